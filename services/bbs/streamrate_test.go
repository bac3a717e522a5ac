package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
)

// openFrom opens a stream on base as the client forwarded (X-Forwarded-For:
// forwarded, unless ""), and returns the answer; an open stream is closed
// when the test ends.
func openFrom(t *testing.T, base, forwarded string) testenv.Answer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/topics/stream", nil)
	if forwarded != "" {
		req.Header.Set("X-Forwarded-For", forwarded)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("stream: %v", err)
	}
	if resp.StatusCode == http.StatusOK {
		t.Cleanup(func() { cancel(); resp.Body.Close() })
		return testenv.Answer{Status: resp.StatusCode, Header: resp.Header}
	}
	defer cancel()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return testenv.Answer{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// TestStreamRateLimit: STREAM_RATE=60 with STREAM_BURST=3 lets one client
// address open 3 streams at once, on any replica of the cluster (one budget
// in Redis), and answers the 4th with 429 rate_limited and a Retry-After;
// another address has its own budget, and writes are not streams. Before,
// the setting did not exist and every stream opened.
func TestStreamRateLimit(t *testing.T) {
	c := newCluster(t, "")
	limits := map[string]string{"STREAM_RATE": "60", "STREAM_BURST": "3", "TRUSTED_PROXIES": "127.0.0.1/32"}
	rs := []*replica{c.start("r1", limits), c.start("r2", limits)}
	for i := range 3 {
		if a := openFrom(t, rs[i%2].URL, "198.51.100.7"); a.Status != http.StatusOK {
			t.Fatalf("stream %d within the burst: %d %s", i+1, a.Status, a.Body)
		}
	}
	refused := openFrom(t, rs[1].URL, "198.51.100.7")
	checkRateLimited(t, refused, 60)
	if a := openFrom(t, rs[0].URL, "198.51.100.8"); a.Status != http.StatusOK {
		t.Errorf("another address's stream: %d %s, want 200 (its own budget)", a.Status, a.Body)
	}
	if a := createFrom(t, rs[0], "198.51.100.7", "streams are not writes"); a.Status != http.StatusCreated {
		t.Errorf("a write from the limited address: %d %s", a.Status, a.Body)
	}
	// The budget comes back at the pace of STREAM_RATE: one a second.
	time.Sleep(1100 * time.Millisecond)
	if a := openFrom(t, rs[0].URL, "198.51.100.7"); a.Status != http.StatusOK {
		t.Errorf("a stream a second after the refusal: %d %s, want 200", a.Status, a.Body)
	}
}

// TestStreamRateLimitLocalMode: without Redis the budget is kept in the
// replica's memory, with the same answers; STREAM_RATE=0 turns it off.
func TestStreamRateLimitLocalMode(t *testing.T) {
	r := localWithStreamRate(t, "local", "60", "3")
	for i := range 3 {
		if a := openFrom(t, r.URL, ""); a.Status != http.StatusOK {
			t.Fatalf("stream %d within the burst: %d %s", i+1, a.Status, a.Body)
		}
	}
	checkRateLimited(t, openFrom(t, r.URL, ""), 60)

	off := localWithStreamRate(t, "off", "0", "1")
	for i := range 10 {
		if a := openFrom(t, off.URL, ""); a.Status != http.StatusOK {
			t.Fatalf("stream %d with STREAM_RATE=0: %d %s", i+1, a.Status, a.Body)
		}
	}
}

// localWithStreamRate starts a lone replica (SQLite, no Redis) with the
// given STREAM_RATE and STREAM_BURST.
func localWithStreamRate(t *testing.T, id, rate, burst string) *replica {
	t.Helper()
	return startReplica(t, id, map[string]string{
		"DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "bbs.db"),
		"STREAM_RATE":  rate,
		"STREAM_BURST": burst,
	})
}
