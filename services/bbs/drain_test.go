package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestSIGKILLClientsResume: a replica process dies without a word. Its
// clients reconnect through another replica with Last-Event-ID and end
// with exactly the right state, having applied only deltas, in order.
func TestSIGKILLClientsResume(t *testing.T) {
	c := newCluster(t, "")
	doomed := c.startProcess("doomed", nil)
	survivor := c.startProcess("survivor", nil)
	var views []*view
	for i := 0; i < 5; i++ {
		views = append(views, watch(t, fmt.Sprintf("client%d", i), doomed.URL, ""))
	}
	for i := 0; i < 5; i++ {
		survivor.create(t, fmt.Sprintf("before %d", i))
	}
	for _, v := range views {
		v.waitVersion(5, 5*time.Second)
	}
	if _, err := doomed.signal(syscall.SIGKILL, 5*time.Second); err == nil {
		t.Fatal("SIGKILLed process exited cleanly?")
	}
	// Changes while the clients are away: they must get exactly these.
	for i := 0; i < 5; i++ {
		survivor.create(t, fmt.Sprintf("after %d", i))
	}
	for _, v := range views {
		v.reconnect(survivor.URL)
	}
	want := survivor.list(t)
	for _, v := range views {
		v.waitVersion(want.Version, 5*time.Second)
		sameList(t, v.name, v.state(), want)
		v.check()
		// The snapshot at 0 on connect, then ten deltas: the five missed while
		// away came as deltas on resume, not as a second snapshot.
		v.mu.Lock()
		if len(v.versions) != 11 || v.versions[0] != 0 || v.versions[10] != 10 {
			t.Errorf("%s: saw versions %v, want 0 (snapshot) then 1..10", v.name, v.versions)
		}
		v.mu.Unlock()
	}
}

// TestSIGTERMDrains is a rolling update's view of one replica: on SIGTERM
// it turns not-ready, tells each stream to come back after its own delay
// within DRAIN_JITTER (not all in the same instant), lets writes in flight
// finish, and exits 0 within SHUTDOWN_GRACE. No acknowledged write is lost.
func TestSIGTERMDrains(t *testing.T) {
	c := newCluster(t, "")
	jitter := 2 * time.Second
	draining := c.startProcess("draining", map[string]string{"DRAIN_JITTER": jitter.String(), "SHUTDOWN_GRACE": "10s"})
	other := c.startProcess("other", nil)
	const clients = 30
	var views []*view
	for i := 0; i < clients; i++ {
		views = append(views, watch(t, fmt.Sprintf("client%d", i), draining.URL, ""))
	}

	// Writers keep hitting the draining replica through the signal.
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var out struct{}
				req := fmt.Sprintf("writer %d/%d", w, i)
				code := doQuiet(draining.URL, req, &out)
				if code == http.StatusCreated {
					acked.Add(1)
				}
				if code == 0 { // connection refused: the replica is gone
					return
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	took, err := draining.signal(syscall.SIGTERM, 15*time.Second)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("drained replica exited with %v, want 0", err)
	}
	t.Logf("drained %d streams and exited 0 in %v", clients, took)

	distinct := map[int64]bool{}
	for _, v := range views {
		r := v.retries()
		if len(r) < 2 {
			t.Fatalf("%s: retry values %v, want the connect one and a drain one", v.name, r)
		}
		last := r[len(r)-1]
		if last < 0 || last > jitter.Milliseconds() {
			t.Errorf("%s: drain retry %d ms outside [0, %d]", v.name, last, jitter.Milliseconds())
		}
		distinct[last] = true
	}
	if len(distinct) < clients/2 {
		t.Errorf("only %d distinct drain delays for %d clients: reconnects not spread", len(distinct), clients)
	}

	// Every acknowledged write is in the database, and the clients resume
	// on the other replica to exactly its state.
	var truth struct {
		Version int64
		Topics  []struct{ ID int64 }
	}
	do(t, "GET", other.URL+"/api/topics?limit=500", "", nil, &truth)
	if int64(len(truth.Topics)) < acked.Load() || truth.Version < acked.Load() {
		t.Fatalf("%d writes acknowledged, database has %d topics at version %d", acked.Load(), len(truth.Topics), truth.Version)
	}
	t.Logf("%d writes acknowledged during the drain, all in the database", acked.Load())
	want := other.list(t)
	for _, v := range views {
		v.reconnect(other.URL)
		v.waitVersion(want.Version, 5*time.Second)
		sameList(t, v.name, v.state(), want)
		v.check()
	}
}

// doQuiet posts a comment and returns the status, or 0 when the replica
// could not be reached at all.
func doQuiet(url, comment string, out any) int {
	resp, err := http.Post(url+"/api/topics", "application/json", strings.NewReader(`{"comment":"`+comment+`"}`))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
