package main

import (
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
)

// TestStartsWhileDatabaseDown: a replica started while Postgres cannot be
// reached stays up (live, not ready, taking no writes) and turns ready by
// itself once the database is back. Before, it exited with status 1 ("open
// store: failed to connect"), so an orchestrator restarted it in a loop
// and a rolling update during an outage had nothing new to roll to (the
// soak test found it).
func TestStartsWhileDatabaseDown(t *testing.T) {
	c := newCluster(t, "")
	proxy, dbURL := databaseProxy(t, c)
	proxy.Cut()
	p := c.startProcessUnready("r1", map[string]string{"DATABASE_URL": dbURL})
	time.Sleep(1500 * time.Millisecond)
	if exited, err := p.proc.Wait(0); exited {
		t.Fatalf("replica exited while the database was down: %v", err)
	}
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/readyz": http.StatusServiceUnavailable} {
		if o := testenv.Send(testenv.Request{Method: "GET", URL: p.URL + path}); o.Status != want {
			t.Errorf("%s with the database down: %v, want %d", path, o, want)
		}
	}
	if _, o := tryCreate(p.URL, "too early"); o.Status != http.StatusServiceUnavailable {
		t.Errorf("a write before the replica is ready: %v, want 503", o)
	}
	proxy.Restore()
	if err := p.proc.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.create(t, "after the database came back")
	if _, err := p.signal(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}
