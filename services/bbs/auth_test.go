package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/sse"
	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/wire"
)

// TestAuthorization holds edits and deletes to their tokens, and holds
// every token to the one answer that hands it out.

// rawStream records the raw bytes of an SSE stream as they arrive, so a
// test can grep everything the server sent to a browser.
type rawStream struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	more chan struct{}
	stop func()
	done chan struct{}
}

func openRawStream(t testing.TB, url string) *rawStream {
	t.Helper()
	a := tryStream(t, url)
	if a.Status != http.StatusOK {
		t.Fatalf("stream answered %d: %s", a.Status, a.Body)
	}
	resp := a.resp
	s := &rawStream{more: make(chan struct{}, 1), stop: a.close, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		p := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(p)
			s.mu.Lock()
			s.buf.Write(p[:n])
			s.mu.Unlock()
			select {
			case s.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

// waitFor waits until the stream has sent sub.
func (s *rawStream) waitFor(t testing.TB, sub string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(s.text(), sub) {
		select {
		case <-s.more:
		case <-s.done:
			if !strings.Contains(s.text(), sub) {
				t.Fatalf("stream ended without %q; got %q", sub, s.text())
			}
		case <-deadline:
			t.Fatalf("stream never sent %q; got %q", sub, s.text())
		}
	}
}

func (s *rawStream) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *rawStream) close() {
	s.stop()
	<-s.done
}

// snapshotRaw opens a stream, reads up to its snapshot event and returns
// every byte read so far.
func snapshotRaw(t testing.TB, url string) (string, wire.List) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/topics/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	defer resp.Body.Close()
	var raw bytes.Buffer
	rd := sse.NewReader(io.TeeReader(resp.Body, &raw))
	for {
		ev, err := rd.Next()
		if err != nil {
			t.Fatalf("stream ended before its snapshot: %v; got %q", err, raw.String())
		}
		if ev.Name == "snapshot" {
			var l wire.List
			if err := json.Unmarshal([]byte(ev.Data), &l); err != nil {
				t.Fatalf("snapshot %q: %v", ev.Data, err)
			}
			return raw.String(), l
		}
	}
}

func TestAuthorization(t *testing.T) {
	c := newCluster(t, "")
	r := c.start("r1", nil)
	base := databaseList(t, r).Version
	// Everything the server sends to browsers during the test, to grep for
	// tokens at the end.
	live := openRawStream(t, r.URL)
	live.waitFor(t, "event: snapshot")

	a := r.create(t, "topic A")
	b := r.create(t, "topic B")
	writes := 2
	urlA := topicURL(r, a.Topic.ID)
	urlB := topicURL(r, b.Topic.ID)
	auth := func(v string) map[string]string {
		if v == "" {
			return nil
		}
		return map[string]string{"Authorization": v}
	}

	// refused checks a rejected write and, for a 401, the challenge that
	// tells the client how to authenticate.
	refused := func(t *testing.T, rq testenv.Request, status int, code string) {
		t.Helper()
		ans := testenv.Do(t, rq)
		checkAPIError(t, ans, status, code)
		if status == http.StatusUnauthorized && !strings.HasPrefix(ans.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("401 with WWW-Authenticate %q, want a Bearer challenge", ans.Header.Get("WWW-Authenticate"))
		}
	}
	edit := func(url, authz, comment string) testenv.Request {
		return testenv.Request{Method: "PATCH", URL: url, JSON: wire.CommentBody{Comment: comment}, Header: auth(authz)}
	}
	del := func(url, authz string) testenv.Request {
		return testenv.Request{Method: "DELETE", URL: url, Header: auth(authz)}
	}
	// edited checks a 200 edit answer and returns the topic.
	edited := func(t *testing.T, rq testenv.Request, comment string) {
		t.Helper()
		ans := testenv.Do(t, rq)
		checkCommon(t, ans)
		if ans.Status != http.StatusOK {
			t.Fatalf("edit: %d %s", ans.Status, ans.Body)
		}
		writes++
		var one wire.One
		decodeAnswer(t, ans, &one)
		if one.Topic.ID != a.Topic.ID || one.Topic.Comment != comment {
			t.Errorf("edit answered %+v, want topic %d with %q", one.Topic, a.Topic.ID, comment)
		}
		if bytes.Contains(ans.Body, []byte(a.Token)) {
			t.Errorf("edit answer contains the token: %s", ans.Body)
		}
	}
	deleted := func(t *testing.T, rq testenv.Request) {
		t.Helper()
		ans := testenv.Do(t, rq)
		checkCommon(t, ans)
		if ans.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", ans.Status, ans.Body)
		}
		writes++
		if len(ans.Body) != 0 {
			t.Errorf("204 with a body: %q", ans.Body)
		}
	}

	t.Run("PATCH", func(t *testing.T) {
		refused(t, edit(urlA, "", "no token"), 401, "unauthorized")
		refused(t, edit(urlA, "Basic xyz", "basic"), 401, "unauthorized")
		refused(t, edit(urlA, "Bearer", "scheme only"), 401, "unauthorized")
		refused(t, edit(urlA, "Bearer ", "empty token"), 401, "unauthorized")
		// A's token under another scheme is no bearer token at all.
		refused(t, edit(urlA, "Token "+a.Token, "other scheme"), 401, "unauthorized")
		refused(t, edit(urlA, "Bearer wrong", "wrong"), 403, "forbidden")
		refused(t, edit(urlA, "Bearer "+b.Token, "B's token"), 403, "forbidden")
		// A token only ever opens its own topic, admin token aside.
		refused(t, edit(urlB, "Bearer "+a.Token, "A's token on B"), 403, "forbidden")
		edited(t, edit(urlA, "Bearer "+a.Token, "edited by A"), "edited by A")
		// The scheme is case-insensitive (RFC 9110 §11.1).
		edited(t, edit(urlA, "bearer "+a.Token, "edited by a"), "edited by a")
		edited(t, edit(urlA, "Bearer admin-secret", "edited by admin"), "edited by admin")
	})

	t.Run("DELETE", func(t *testing.T) {
		refused(t, del(urlA, ""), 401, "unauthorized")
		refused(t, del(urlA, "Basic xyz"), 401, "unauthorized")
		refused(t, del(urlA, "Bearer wrong"), 403, "forbidden")
		refused(t, del(urlA, "Bearer "+b.Token), 403, "forbidden")
		// Purging is the operator's: not even the author may.
		refused(t, del(urlA+"?purge=true", "Bearer "+a.Token), 403, "forbidden")
		refused(t, del(urlB+"?purge=true", "Bearer "+b.Token), 403, "forbidden")
		// No token at all is 401, purge or not.
		refused(t, del(urlA+"?purge=true", ""), 401, "unauthorized")
		deleted(t, del(urlA, "Bearer "+a.Token))
		// Soft-deleted: gone for everyone but the purge.
		refused(t, del(urlA, "Bearer "+a.Token), 404, "not_found")
		refused(t, del(urlA, "Bearer admin-secret"), 404, "not_found")
		refused(t, edit(urlA, "Bearer "+a.Token, "after delete"), 404, "not_found")
		deleted(t, del(urlB+"?purge=true", "Bearer admin-secret"))
		refused(t, del(urlB+"?purge=true", "Bearer admin-secret"), 404, "not_found")
		// The purge also reaches a topic that is already soft-deleted.
		deleted(t, del(urlA+"?purge=true", "Bearer admin-secret"))
		refused(t, del(urlA+"?purge=true", "Bearer admin-secret"), 404, "not_found")
	})

	// Only the successful writes moved the version; the board is empty.
	truth := databaseList(t, r)
	if truth.Version != base+int64(writes) {
		t.Errorf("version %d, want %d + %d successful writes", truth.Version, base, writes)
	}
	if len(truth.Topics) != 0 {
		t.Errorf("topics left: %+v", truth.Topics)
	}

	// No secret ever leaves the server after the create answer: not in the
	// list (database and cached), not in a snapshot, not in any event.
	secrets := []string{a.Token, b.Token, "admin-secret"}
	lists := map[string]string{
		"GET /api/topics?limit=500": string(testenv.Do(t, testenv.Request{Method: "GET", URL: r.URL + "/api/topics?limit=500"}).Body),
		"GET /api/topics":           string(testenv.Do(t, testenv.Request{Method: "GET", URL: r.URL + "/api/topics"}).Body),
	}
	snap, l := snapshotRaw(t, r.URL)
	if l.Version != truth.Version {
		t.Errorf("snapshot at %d, database at %d", l.Version, truth.Version)
	}
	lists["SSE snapshot"] = snap
	live.waitFor(t, fmt.Sprintf("id: %d\n", truth.Version))
	lists["SSE events"] = live.text()
	// And a board with the topics still on it, where a leak would show.
	c2 := r.create(t, "topic C")
	lists["GET /api/topics with a topic"] = string(testenv.Do(t, testenv.Request{Method: "GET", URL: r.URL + "/api/topics?limit=500"}).Body)
	snapC, _ := snapshotRaw(t, r.URL)
	lists["SSE snapshot with a topic"] = snapC
	secrets = append(secrets, c2.Token)
	for what, body := range lists {
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("%s contains a token: %q", what, body)
			}
		}
	}
	if !strings.Contains(lists["SSE snapshot with a topic"], "topic C") {
		t.Errorf("snapshot does not show topic C: %q", snapC)
	}
}
