package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
)

// serveEnv makes the test binary act as the bbs server, so tests can run
// real replica processes and kill them with real signals.
const serveEnv = "BBS_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := run(ctx, nil, os.Getenv, os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bbs:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// process is a replica in its own OS process: this test binary, serving
// as bbs does (TestMain), so tests can kill it with real signals.
type process struct {
	*replica
	proc *testenv.Replica
}

// startProcess runs a replica process with the cluster's settings and
// waits until it is ready.
func (c *cluster) startProcess(id string, extra map[string]string) *process {
	c.t.Helper()
	p := c.startProcessUnready(id, extra)
	if err := p.proc.WaitReady(context.Background()); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// startProcessUnready runs a replica process and waits until it is live
// (/healthz), ready or not.
func (c *cluster) startProcessUnready(id string, extra map[string]string) *process {
	t := c.t
	t.Helper()
	env := []string{serveEnv + "=1"}
	for k, v := range c.base {
		if k != "HTTP_ADDR" && k != "INTERNAL_ADDR" { // the launcher's own, on ports it keeps
			env = append(env, k+"="+v)
		}
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	pr := testenv.NewUnstartedReplica(t, testenv.ReplicaSpec{ID: id, Bin: os.Args[0], Args: []string{"-test.run=^$"}, Env: env})
	if err := pr.Launch(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		if !pr.Running() {
			_, err := pr.Wait(0)
			t.Fatalf("process %s exited at start: %v", id, err)
		}
		if a := testenv.Send(testenv.Request{Method: "GET", URL: pr.URL + "/healthz"}); a.Status != http.StatusOK {
			return fmt.Errorf("process %s not live: %v", id, a)
		}
		return nil
	})
	return &process{replica: &replica{t: t, id: id, URL: pr.URL, Internal: "http://" + pr.Internal}, proc: pr}
}

// signal sends sig and returns how long the process took to exit, and how.
func (p *process) signal(sig syscall.Signal, within time.Duration) (time.Duration, error) {
	p.t.Helper()
	start := time.Now()
	if err := p.proc.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	exited, err := p.proc.Wait(within)
	if !exited {
		p.t.Fatalf("%s did not exit within %v of %v", p.id, within, sig)
	}
	return time.Since(start), err
}

// reconnect points a view whose stream ended at another replica, sending
// Last-Event-ID as a browser does.
func (v *view) reconnect(url string) {
	v.t.Helper()
	v.mu.Lock()
	ended, last := v.ended, v.lastID
	v.mu.Unlock()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		v.t.Fatalf("%s: stream did not end", v.name)
	}
	v.connect(url, last)
}

// retries returns the retry: values the view was sent, in order.
func (v *view) retries() []int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]int64(nil), v.retrySeen...)
}
