package deploytest

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
)

const (
	streams    = 300 // browsers following the board through nginx
	writeRate  = 20  // writes a second through nginx
	readRate   = 20  // reads of the first page a second through nginx
	drainDelay = 3 * time.Second
	drainLimit = drainDelay + 15*time.Second
)

// TestRollingRestart restarts each replica in turn, as a Kubernetes rollout
// does (SIGTERM, exit 0, a new one ready before the next goes), under
// steady writes, steady reads and a few hundred open streams, all through
// nginx. No request may fail (every write, read and stream connect is
// answered 2xx), no acknowledged write may be lost, and every browser must
// end up showing exactly what GET /api/topics says, without ever applying
// a gap.
func TestRollingRestart(t *testing.T) {
	st := startStack(t, map[string]string{
		"WRITE_RATE":             "100000", // every write comes from 127.0.0.1
		"WRITE_BURST":            "100000",
		"MAX_STREAMS_PER_CLIENT": "1000",
		"STREAM_RATE":            "0", // and so does every stream, 300 at once
		"SSE_HEARTBEAT":          "2s",
		"SSE_RETRY":              "1s",
		"DRAIN_JITTER":           "1s",
		"SHUTDOWN_GRACE":         "10s",
		"DRAIN_DELAY":            drainDelay.String(),
	})
	// nginx must have let go of its idle upstream connections to a
	// draining replica before the replica closes them.
	if ka := nginxKeepaliveTimeout(t); ka >= drainDelay {
		t.Fatalf("nginx keepalive_timeout %v must be shorter than DRAIN_DELAY %v", ka, drainDelay)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	streamClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: streams}}
	browsers := make([]*browser, streams)
	done := make(chan struct{}, streams)
	for i := range browsers {
		browsers[i] = newBrowser(st.LB)
		go func() { browsers[i].run(ctx, streamClient); done <- struct{}{} }()
	}
	defer func() {
		stop()
		for range browsers {
			<-done
		}
	}()
	testenv.Eventually(t, 15*time.Second, func() error {
		for i, b := range browsers {
			b.mu.Lock()
			n := b.stats.Snapshots
			b.mu.Unlock()
			if n == 0 {
				return fmt.Errorf("every browser's first snapshot: browser %d has none", i)
			}
		}
		return nil
	})

	writes := newLedger()
	writeCtx, stopWrites := context.WithCancel(ctx)
	writersDone := make(chan struct{})
	go func() {
		writes.writeSteadily(writeCtx, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, st.LB, writeRate)
		close(writersDone)
	}()
	readersDone := make(chan struct{})
	go func() {
		writes.readSteadily(writeCtx, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, st.LB, readRate)
		close(readersDone)
	}()

	time.Sleep(2 * time.Second)
	for _, r := range st.Replicas {
		drained := r.terminate(drainLimit)
		start := time.Now()
		r.start()
		t.Logf("%s: drained and exited 0 in %v, ready again in %v", r.ID, drained.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		time.Sleep(time.Second)
	}
	time.Sleep(2 * time.Second)
	stopWrites()
	<-writersDone
	<-readersDone

	final := settledVersion(t, st)
	testenv.Eventually(t, 20*time.Second, func() error {
		for i, b := range browsers {
			if v := b.view().Version; v < final.Version {
				return fmt.Errorf("every browser at the final version %d: browser %d at %d", final.Version, i, v)
			}
		}
		return nil
	})
	checkBrowsers(t, browsers, final)
	checkWrites(t, st, writes)
	checkNoFailures(t, writes)
}
