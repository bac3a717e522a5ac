package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/wire"
)

// These tests hold replicas to docs/ARCHITECTURE.md's "abuse" row: a write rate limit
// per client address shared by the whole cluster through Redis, client
// addresses from X-Forwarded-For only behind TRUSTED_PROXIES, writes let
// through (and counted) while Redis is down, and caps on streams per
// client address and per replica.

// createFrom posts a topic to r as the client forwarded (X-Forwarded-For:
// forwarded, unless "").
func createFrom(t testing.TB, r *replica, forwarded, comment string) testenv.Answer {
	t.Helper()
	rq := testenv.Request{Method: "POST", URL: r.URL + "/api/topics", JSON: wire.CommentBody{Comment: comment}}
	if forwarded != "" {
		rq.Header = map[string]string{"X-Forwarded-For": forwarded}
	}
	return testenv.Do(t, rq)
}

// checkRateLimited fails unless a is the 429 of a spent budget, with a
// Retry-After of whole seconds, at least 1 and at most the refill of one
// write (60/rate seconds).
func checkRateLimited(t testing.TB, a testenv.Answer, perMinute int) {
	t.Helper()
	checkAPIError(t, a, http.StatusTooManyRequests, "rate_limited")
	ra := a.Header.Get("Retry-After")
	secs, err := strconv.Atoi(ra)
	if err != nil || secs < 1 || secs > 60/perMinute {
		t.Errorf("Retry-After %q, want whole seconds from 1 to %d", ra, 60/perMinute)
	}
}

// TestRateLimitClusterWide: one client writing through three replicas has
// one budget, not three. With 5 a minute and a burst of 5, the first five
// creates are written and every later one is refused with 429, whichever
// replica it reaches; the database holds exactly the five. Edits and
// deletes spend from the same budget, reads and streams do not, and the
// admin token is not limited.
func TestRateLimitClusterWide(t *testing.T) {
	c := newCluster(t, "")
	limits := map[string]string{"WRITE_RATE": "5", "WRITE_BURST": "5"}
	rs := []*replica{c.start("r1", limits), c.start("r2", limits), c.start("r3", limits)}

	var first wire.Created
	refusedBy := map[string]int{}
	for i := range 12 {
		r := rs[i%len(rs)]
		a := createFrom(t, r, "", fmt.Sprintf("write %d", i+1))
		if i < 5 {
			if a.Status != http.StatusCreated {
				t.Fatalf("create %d on %s: %d %s, want 201 (within the burst)", i+1, r.id, a.Status, a.Body)
			}
			if i == 0 {
				decodeAnswer(t, a, &first)
			}
			continue
		}
		checkRateLimited(t, a, 5)
		refusedBy[a.Header.Get("X-Replica")]++
	}
	if len(refusedBy) != 3 {
		t.Errorf("429s came from %v, want every replica refusing", refusedBy)
	}
	if l := databaseList(t, rs[0]); l.Version != 5 || len(l.Topics) != 5 {
		t.Fatalf("database at version %d with %d topics, want exactly the 5 allowed writes", l.Version, len(l.Topics))
	}

	// Edits and deletes are writes too; the topic's own token does not
	// lift the limit.
	topicURL := fmt.Sprintf("%s/api/topics/%d", rs[1].URL, first.Topic.ID)
	edit := testenv.Do(t, testenv.Request{Method: "PATCH", URL: topicURL, JSON: wire.CommentBody{Comment: "edited"}, Token: first.Token})
	checkRateLimited(t, edit, 5)
	del := testenv.Do(t, testenv.Request{Method: "DELETE", URL: topicURL, Token: first.Token})
	checkRateLimited(t, del, 5)

	// Reading is not writing: the list and the stream still answer.
	if a := testenv.Do(t, testenv.Request{Method: "GET", URL: rs[2].URL + "/api/topics"}); a.Status != http.StatusOK {
		t.Errorf("GET /api/topics while rate limited: %d %s", a.Status, a.Body)
	}
	openRawStream(t, rs[2].URL).waitFor(t, "event: snapshot")

	// Moderating a flood is when the admin writes the most.
	adminDel := testenv.Do(t, testenv.Request{Method: "DELETE", URL: topicURL, Token: "admin-secret"})
	if adminDel.Status != http.StatusNoContent {
		t.Errorf("admin delete while the address is limited: %d %s", adminDel.Status, adminDel.Body)
	}
	if l := databaseList(t, rs[0]); l.Version != 6 {
		t.Errorf("database at version %d, want 6 (five creates, one admin delete)", l.Version)
	}
}

// TestRateLimitForwardedFor: X-Forwarded-For names the client only when
// the peer is a trusted proxy. Without TRUSTED_PROXIES a client cannot
// take a fresh budget by sending a new header each time; behind a trusted
// proxy each forwarded address has a budget of its own, and only the
// address the proxy appended counts, not what the client wrote before it.
func TestRateLimitForwardedFor(t *testing.T) {
	limits := map[string]string{"WRITE_RATE": "1", "WRITE_BURST": "2"}

	t.Run("untrusted", func(t *testing.T) {
		c := newCluster(t, "")
		r := c.start("direct", limits)
		for i, fwd := range []string{"198.51.100.1", "198.51.100.2"} {
			if a := createFrom(t, r, fwd, "spoof"); a.Status != http.StatusCreated {
				t.Fatalf("create %d: %d %s", i+1, a.Status, a.Body)
			}
		}
		for _, fwd := range []string{"198.51.100.3", "203.0.113.4, 198.51.100.4", ""} {
			checkRateLimited(t, createFrom(t, r, fwd, "spoof"), 1)
		}
		if l := databaseList(t, r); l.Version != 2 {
			t.Errorf("database at version %d, want 2", l.Version)
		}
	})

	t.Run("trusted", func(t *testing.T) {
		c := newCluster(t, "")
		proxied := map[string]string{"TRUSTED_PROXIES": "127.0.0.1/32"}
		for k, v := range limits {
			proxied[k] = v
		}
		rs := []*replica{c.start("behind-lb-1", proxied), c.start("behind-lb-2", proxied)}
		clients := []string{"198.51.100.1", "198.51.100.2", "2001:db8:1:2::7"}
		n := 0
		for _, client := range clients {
			for i := range 2 {
				if a := createFrom(t, rs[n%2], client, "forwarded"); a.Status != http.StatusCreated {
					t.Fatalf("create %d from %s: %d %s, want 201 (its own budget)", i+1, client, a.Status, a.Body)
				}
				n++
			}
		}
		for _, client := range clients {
			checkRateLimited(t, createFrom(t, rs[n%2], client, "forwarded"), 1)
			n++
		}
		// The client wrote "192.0.2.99"; the proxy appended its real address.
		checkRateLimited(t, createFrom(t, rs[0], "192.0.2.99, 198.51.100.1", "forwarded"), 1)
		// Another address in the same IPv6 /64 is the same subscriber.
		checkRateLimited(t, createFrom(t, rs[1], "2001:db8:1:2::8", "forwarded"), 1)
		// The proxy's own writes (no header) are a budget of their own.
		if a := createFrom(t, rs[0], "", "from the proxy"); a.Status != http.StatusCreated {
			t.Fatalf("create from the proxy itself: %d %s", a.Status, a.Body)
		}
		if l := databaseList(t, rs[1]); l.Version != 7 {
			t.Errorf("database at version %d, want 7", l.Version)
		}
	})
}

// TestRateLimitRedisDown: the limiter lives in Redis, and a Redis outage
// must not stop writes (availability first). While Redis is down every
// write commits and answers 201, and bbs_rate_limit_skipped_total counts
// the writes that went unchecked; once Redis is back the limit holds again.
func TestRateLimitRedisDown(t *testing.T) {
	rs := testenv.StartRedis(t)
	c := newCluster(t, rs.URL())
	r := c.start("r1", map[string]string{"WRITE_RATE": "1", "WRITE_BURST": "1"})

	if a := createFrom(t, r, "", "before"); a.Status != http.StatusCreated {
		t.Fatalf("first create: %d %s", a.Status, a.Body)
	}
	checkRateLimited(t, createFrom(t, r, "", "over the limit"), 1)
	if got := r.metric(t, "bbs_rate_limit_skipped_total"); got != 0 {
		t.Fatalf("bbs_rate_limit_skipped_total = %v with Redis up, want 0", got)
	}

	rs.Stop()
	const down = 4
	for i := range down {
		if a := createFrom(t, r, "", fmt.Sprintf("redis down %d", i+1)); a.Status != http.StatusCreated {
			t.Fatalf("create %d with Redis down: %d %s, want 201", i+1, a.Status, a.Body)
		}
	}
	if got := r.metric(t, "bbs_rate_limit_skipped_total"); got < down {
		t.Errorf("bbs_rate_limit_skipped_total = %v after %d unchecked writes", got, down)
	}
	if l := databaseList(t, r); l.Version != 1+down {
		t.Errorf("database at version %d, want %d", l.Version, 1+down)
	}

	// Redis is back, empty: the client gets a fresh budget of one and is
	// limited again as soon as the client reconnects.
	rs.Start()
	testenv.Eventually(t, 15*time.Second, func() error {
		a := createFrom(t, r, "", "redis back")
		if a.Status == http.StatusTooManyRequests {
			checkRateLimited(t, a, 1)
			return nil
		}
		if a.Status != http.StatusCreated {
			t.Fatalf("create after Redis came back: %d %s", a.Status, a.Body)
		}
		return errors.New("writes still unlimited after Redis came back")
	})
}

// TestRateLimitLocalMode: without Redis (make run) the limit is kept in
// the replica's memory, with the same answers.
func TestRateLimitLocalMode(t *testing.T) {
	r := startReplica(t, "local", map[string]string{
		"DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "bbs.db"),
		"WRITE_RATE":   "2",
		"WRITE_BURST":  "3",
	})
	for i := range 3 {
		if a := createFrom(t, r, "", "local"); a.Status != http.StatusCreated {
			t.Fatalf("create %d: %d %s", i+1, a.Status, a.Body)
		}
	}
	checkRateLimited(t, createFrom(t, r, "", "local"), 2)
	checkRateLimited(t, createFrom(t, r, "198.51.100.9", "local"), 2) // no trusted proxies
	if l := databaseList(t, r); l.Version != 3 {
		t.Errorf("database at version %d, want 3", l.Version)
	}
	if got := r.metric(t, "bbs_rate_limit_skipped_total"); got != 0 {
		t.Errorf("bbs_rate_limit_skipped_total = %v, want 0: memory never fails", got)
	}
}

// TestRateLimitDisabled: WRITE_RATE=0 turns the limiter off.
func TestRateLimitDisabled(t *testing.T) {
	c := newCluster(t, "")
	r := c.start("r1", map[string]string{"WRITE_RATE": "0", "WRITE_BURST": "1"})
	for i := range 5 {
		if a := createFrom(t, r, "", "unlimited"); a.Status != http.StatusCreated {
			t.Fatalf("create %d with WRITE_RATE=0: %d %s", i+1, a.Status, a.Body)
		}
	}
}

// streamAttempt opens a stream; on 200 it is held open until close.
type streamAttempt struct {
	Status int
	Header http.Header
	Body   []byte         // the error body when not 200
	resp   *http.Response // the open stream when 200
	close  func()
}

func tryStream(t testing.TB, url string) streamAttempt {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/topics/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return streamAttempt{Status: resp.StatusCode, Header: resp.Header, Body: body, close: func() {}}
	}
	closed := false
	closeFn := func() {
		if !closed {
			closed = true
			cancel()
			resp.Body.Close()
		}
	}
	t.Cleanup(closeFn)
	return streamAttempt{Status: resp.StatusCode, Header: resp.Header, resp: resp, close: closeFn}
}

// checkStreamRefused fails unless s is the refusal status with code
// too_many_streams and a Retry-After.
func checkStreamRefused(t testing.TB, s streamAttempt, status int) {
	t.Helper()
	if s.Status != status {
		t.Fatalf("stream answered %d %s, want %d", s.Status, s.Body, status)
	}
	var e wire.Error
	if err := json.Unmarshal(s.Body, &e); err != nil || e.Error.Code != "too_many_streams" || e.Error.Message == "" {
		t.Errorf("error body %s (%v), want code too_many_streams with a message", s.Body, err)
	}
	if secs, err := strconv.Atoi(s.Header.Get("Retry-After")); err != nil || secs < 1 {
		t.Errorf("Retry-After %q, want whole seconds, at least 1", s.Header.Get("Retry-After"))
	}
}

// TestStreamCapPerClient: one address may hold MAX_STREAMS_PER_CLIENT
// streams on a replica; the next gets 429 until one of them closes.
func TestStreamCapPerClient(t *testing.T) {
	c := newCluster(t, "")
	r := c.start("r1", map[string]string{"MAX_STREAMS_PER_CLIENT": "2"})
	a, b := tryStream(t, r.URL), tryStream(t, r.URL)
	if a.Status != http.StatusOK || b.Status != http.StatusOK {
		t.Fatalf("streams within the cap: %d, %d", a.Status, b.Status)
	}
	checkStreamRefused(t, tryStream(t, r.URL), http.StatusTooManyRequests)
	if got := r.metric(t, `bbs_streams_rejected_total{reason="client_full"}`); got != 1 {
		t.Errorf(`bbs_streams_rejected_total{reason="client_full"} = %v, want 1`, got)
	}

	// The replica learns of the close when the connection goes: retry
	// until it has.
	a.close()
	testenv.Eventually(t, 10*time.Second, func() error {
		s := tryStream(t, r.URL)
		if s.Status == http.StatusOK {
			return nil
		}
		if s.Status != http.StatusTooManyRequests {
			t.Fatalf("stream after one closed: %d %s", s.Status, s.Body)
		}
		return fmt.Errorf("stream after one closed: %d %s", s.Status, s.Body)
	})
	// Writes and reads are not streams.
	if a := createFrom(t, r, "", "while streaming"); a.Status != http.StatusCreated {
		t.Errorf("create while at the stream cap: %d %s", a.Status, a.Body)
	}
}

// TestStreamCapPerReplica: MAX_STREAMS bounds the streams of a replica,
// whoever holds them; beyond it, 503 so the load balancer tries another.
func TestStreamCapPerReplica(t *testing.T) {
	c := newCluster(t, "")
	r := c.start("r1", map[string]string{"MAX_STREAMS": "3"})
	for i := range 3 {
		if s := tryStream(t, r.URL); s.Status != http.StatusOK {
			t.Fatalf("stream %d within MAX_STREAMS: %d %s", i+1, s.Status, s.Body)
		}
	}
	checkStreamRefused(t, tryStream(t, r.URL), http.StatusServiceUnavailable)
	if got := r.metric(t, `bbs_streams_rejected_total{reason="replica_full"}`); got != 1 {
		t.Errorf(`bbs_streams_rejected_total{reason="replica_full"} = %v, want 1`, got)
	}
}

// TestStreamCapsHoldUnderABurst: 40 streams asked for at once never get
// past MAX_STREAMS (or MAX_STREAMS_PER_CLIENT): each is reserved before the
// stream is accepted. Before, the cap was checked and only counted later,
// so a burst overshot it.
func TestStreamCapsHoldUnderABurst(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		limit int
	}{
		{"per replica", map[string]string{"MAX_STREAMS": "5", "MAX_STREAMS_PER_CLIENT": "1000"}, 5},
		{"per client", map[string]string{"MAX_STREAMS_PER_CLIENT": "5"}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, "")
			r := c.start("r1", tc.env)
			var wg sync.WaitGroup
			var ok atomic.Int32
			start := make(chan struct{})
			for range 40 {
				wg.Go(func() {
					<-start
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					req, _ := http.NewRequestWithContext(ctx, "GET", r.URL+"/api/topics/stream", nil)
					resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
					if err != nil {
						return
					}
					if resp.StatusCode == http.StatusOK {
						ok.Add(1)
						<-ctx.Done() // hold it while the others try
					}
					resp.Body.Close()
				})
			}
			close(start)
			wg.Wait()
			if n := int(ok.Load()); n != tc.limit {
				t.Fatalf("%d streams accepted in a burst of 40, cap %d", n, tc.limit)
			}
		})
	}
}
