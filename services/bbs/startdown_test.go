package main

import (
	"net/http"
	"syscall"
	"testing"
	"time"
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
	select {
	case err := <-p.exited:
		t.Fatalf("replica exited while the database was down: %v", err)
	default:
	}
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/readyz": http.StatusServiceUnavailable} {
		if o := sendJSON("GET", p.URL+path, "", nil); o.status != want {
			t.Errorf("%s with the database down: %v, want %d", path, o, want)
		}
	}
	if _, o := tryCreate(p.URL, "too early"); o.status != http.StatusServiceUnavailable {
		t.Errorf("a write before the replica is ready: %v, want 503", o)
	}
	proxy.Restore()
	p.waitReady()
	p.create(t, "after the database came back")
	if _, err := p.signal(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}
