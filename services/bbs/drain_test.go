package main

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/wire"
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
// it turns not-ready and at once tells each stream to come back after its
// own delay within DRAIN_JITTER (not all in the same instant), keeps
// answering writes for DRAIN_DELAY, then refuses connections, lets writes
// in flight finish, and exits 0 within DRAIN_DELAY + SHUTDOWN_GRACE. No
// write fails short of a refused connection, and no acknowledged write is
// lost.
func TestSIGTERMDrains(t *testing.T) {
	c := newCluster(t, "")
	jitter := 2 * time.Second
	delay := 3 * time.Second
	draining := c.startProcess("draining", map[string]string{"DRAIN_JITTER": jitter.String(), "DRAIN_DELAY": delay.String(), "SHUTDOWN_GRACE": "10s"})
	other := c.startProcess("other", nil)
	const clients = 30
	var views []*view
	for i := 0; i < clients; i++ {
		views = append(views, watch(t, fmt.Sprintf("client%d", i), draining.URL, ""))
	}

	// Writers keep hitting the draining replica through the signal, over
	// kept-alive connections.
	var acked atomic.Int64
	var ackedIDs sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	for w := 0; w < 4; w++ {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req := fmt.Sprintf("writer %d/%d", w, i)
				// http.DefaultClient: no time limit, so the drain alone
				// decides how each write ends.
				a := testenv.Send(testenv.Request{Method: "POST", URL: draining.URL + "/api/topics", JSON: wire.CommentBody{Comment: req}, Client: http.DefaultClient})
				var created wire.Created
				if a.Status == http.StatusCreated && a.Decode(&created) == nil {
					acked.Add(1)
					ackedIDs.Store(created.Topic.ID, req)
					continue
				}
				if !errors.Is(a.Err, syscall.ECONNREFUSED) { // refused: the replica is gone
					mu.Lock()
					failed = append(failed, fmt.Sprintf("%s: %v", req, a))
					mu.Unlock()
				}
				return
			}
		})
	}
	// Every stream ends when it is told to come back, at the start of the
	// drain, not when the replica exits.
	streamsEnded := make(chan time.Time, 1)
	go func() {
		for _, v := range views {
			v.mu.Lock()
			ended := v.ended
			v.mu.Unlock()
			<-ended
		}
		streamsEnded <- time.Now()
	}()
	time.Sleep(200 * time.Millisecond)
	signalled := time.Now()
	took, err := draining.signal(syscall.SIGTERM, 15*time.Second)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("drained replica exited with %v, want 0", err)
	}
	told := (<-streamsEnded).Sub(signalled)
	t.Logf("drained %d streams (all told within %v) and exited 0 in %v", clients, told.Round(time.Millisecond), took)
	if told >= delay {
		t.Errorf("streams ended %v after SIGTERM: want them told at once, within DRAIN_DELAY %v", told, delay)
	}
	if took < delay {
		t.Errorf("exited %v after SIGTERM: want answers for DRAIN_DELAY %v first", took, delay)
	}
	for _, f := range failed {
		t.Errorf("write failed during the drain: %s", f)
	}

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
	stored := map[int64]string{}
	url := other.URL + "/api/topics?limit=500"
	for {
		var page wire.List
		if err := testenv.Send(testenv.Request{Method: "GET", URL: url}).Decode(&page); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		for _, tp := range page.Topics {
			stored[tp.ID] = tp.Comment
		}
		if len(page.Topics) == 0 {
			break
		}
		url = fmt.Sprintf("%s/api/topics?limit=500&before=%d", other.URL, page.Topics[len(page.Topics)-1].ID)
	}
	ackedIDs.Range(func(id, comment any) bool {
		if stored[id.(int64)] != comment.(string) {
			t.Errorf("acknowledged write %d (%q) is not in the database", id, comment)
		}
		return true
	})
	t.Logf("%d writes acknowledged during the drain, all in the database (%d topics)", acked.Load(), len(stored))
	// The board the clients must end at is the database's: the other
	// replica may still be applying the drained one's last notices, so
	// its list is read once it has caught up with the head.
	var head int64
	if err := c.db(t).Raw("SELECT v FROM bbs_version WHERE id = 1").Find(&head).Error; err != nil {
		t.Fatal(err)
	}
	var want wire.List
	testenv.Eventually(t, 5*time.Second, func() error {
		if want = other.list(t); want.Version < head {
			return fmt.Errorf("the other replica is at version %d, the database at %d", want.Version, head)
		}
		return nil
	})
	for _, v := range views {
		v.reconnect(other.URL)
		v.waitVersion(want.Version, 5*time.Second)
		sameList(t, v.name, v.state(), want)
		v.check()
	}
}
