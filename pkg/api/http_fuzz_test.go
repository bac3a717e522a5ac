package api_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/api"
	"github.com/bbsboard/bbs/pkg/bus"
	"github.com/bbsboard/bbs/pkg/cache"
	"github.com/bbsboard/bbs/pkg/feed"
	"github.com/bbsboard/bbs/pkg/metrics"
	"github.com/bbsboard/bbs/pkg/sse"
	"github.com/bbsboard/bbs/pkg/store"
	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/topic"
)

// board is a whole replica's HTTP surface on a real listener: the real
// router, store (an embedded SQLite file), feed and hub.
type board struct {
	url   string
	store *store.Store
}

func startBoard(t testing.TB) *board { return startBoardLogging(t, slog.New(slog.DiscardHandler)) }

// startBoardLogging is startBoard with the replica's log going to log.
func startBoardLogging(t testing.TB, log *slog.Logger) *board {
	t.Helper()
	return startBoardWith(t, log, feed.Config{Limit: 5})
}

// startBoardWith is startBoard with the feed's configuration.
func startBoardWith(t testing.TB, log *slog.Logger, fc feed.Config) *board {
	t.Helper()
	var fd *feed.Feed
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "bbs.db"), log, store.WithWindow(5),
		store.WithAfterCommit(func(c []topic.Change) { fd.Publish(c) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	hub := sse.NewHub(8)
	m := metrics.New()
	fd = feed.New(fc, log, st, bus.NewMemory(), cache.NewMemory(), hub, m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); fd.Run(ctx) }()
	srv := api.New(api.Config{Replica: "fuzz", Retry: time.Second, WriteTimeout: time.Second, MaxStreams: 100, MaxStreamsPerClient: 100},
		log, st, fd, hub, topic.NewAuthorizer("admin-token"), m, map[string]api.Check{"database": st.Ping})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		srv.Drain()
		cancel()
		<-done
	})
	testenv.Eventually(t, 10*time.Second, func() error {
		if !fd.Ready() {
			return errors.New("feed not ready")
		}
		return nil
	})
	return &board{url: ts.URL, store: st}
}

// FuzzHTTPSurface drives the real router with arbitrary methods, paths,
// headers and bodies. Whatever arrives: no 5xx, no panic (the server would
// answer 500), and a request that is refused (4xx) writes nothing: the
// cluster version does not move.
func FuzzHTTPSurface(f *testing.F) {
	seeds := []struct{ method, path, ctype, auth, key, last, origin, body string }{
		{"POST", "/api/topics", "application/json", "", "", "", "", `{"comment":"hello"}`},
		{"POST", "/api/topics", "application/json", "", "abcdefghijklmnopqrstuv", "", "", `{"comment":"once"}`},
		{"POST", "/api/topics", "application/json", "", "short", "", "", `{"comment":"x"}`},
		{"POST", "/api/topics", "application/x-www-form-urlencoded", "", "", "", "https://evil.example", "comment=hi"},
		{"POST", "/api/topics", "text/plain", "", "", "", "", `{"comment":"x"}`},
		{"POST", "/api/topics", "application/json", "", "", "", "", `{"comment":"x","extra":1}`},
		{"POST", "/api/topics", "application/json", "", "", "", "", "{\"comment\":\"\xff\xfe\"}"},
		{"PATCH", "/api/topics/1", "application/json", "Bearer nope", "", "", "", `{"comment":"edit"}`},
		{"PATCH", "/api/topics/1", "application/json", "", "", "", "", `{"comment":"edit"}`},
		{"DELETE", "/api/topics/1", "", "Bearer admin-token", "", "", "", ""},
		{"DELETE", "/api/topics/99999999999999999999", "", "Bearer admin-token", "", "", "", ""},
		{"DELETE", "/api/topics/1?purge=true", "", "Bearer wrong", "", "", "", ""},
		{"GET", "/api/topics?limit=0&before=-1", "", "", "", "", "", ""},
		{"GET", "/api/topics?limit=500&before=3", "", "", "", "", "", ""},
		{"GET", "/api/topics/stream", "", "", "", "abc", "", ""},
		{"GET", "/api/topics/stream?lastEventId=-5", "", "", "", "", "", ""},
		{"HEAD", "/readyz", "", "", "", "", "", ""},
		{"OPTIONS", "/api/topics", "", "", "", "", "", ""},
		{"GET", "/static/../../etc/passwd", "", "", "", "", "", ""},
		{"GET", "/%2e%2e/", "", "", "", "", "", ""},
		{"PUT", "/api/topics/", "application/json", "", "", "", "", `[]`},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.ctype, s.auth, s.key, s.last, s.origin, []byte(s.body))
	}
	b := startBoard(f)
	client := &http.Client{
		Timeout:       2 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	f.Fuzz(func(t *testing.T, method, path, ctype, auth, key, last, origin string, body []byte) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, b.url+path, bytes.NewReader(body))
		if err != nil {
			return // not a request any client could send
		}
		for name, v := range map[string]string{"Content-Type": ctype, "Authorization": auth, "Idempotency-Key": key, "Last-Event-ID": last, "Origin": origin} {
			if v != "" {
				req.Header.Set(name, v)
			}
		}
		before, err := b.store.Version(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			// The client refused what it was given to send (a header with
			// a line break, say), or a stream that ends only when we close
			// it: not the server's doing.
			return
		}
		if resp.Header.Get("Content-Type") == "text/event-stream" {
			resp.Body.Close()
		} else {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %q: %d", method, path, resp.StatusCode)
		}
		after, err := b.store.Version(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode >= 400 && after != before {
			t.Fatalf("%s %q answered %d but the version moved %d -> %d", method, path, resp.StatusCode, before, after)
		}
	})
}
