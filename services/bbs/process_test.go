package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"
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

// process is a replica in its own OS process.
type process struct {
	*replica
	cmd    *exec.Cmd
	exited chan error
}

// startProcess runs a replica process with the cluster's settings and
// waits until it is ready.
func (c *cluster) startProcess(id string, extra map[string]string) *process {
	c.t.Helper()
	p := c.startProcessUnready(id, extra)
	p.waitReady()
	return p
}

// startProcessUnready runs a replica process and waits until it listens.
func (c *cluster) startProcessUnready(id string, extra map[string]string) *process {
	t := c.t
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"=1", "REPLICA_ID="+id)
	for k, v := range c.base {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	for k, v := range extra {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{replica: &replica{t: t, id: id}, cmd: cmd, exited: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.Addr
			}
		}
		p.exited <- cmd.Wait()
	}()
	select {
	case a := <-addr:
		p.URL = "http://" + a
	case <-time.After(15 * time.Second):
		t.Fatalf("process %s did not start", id)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	return p
}

// signal sends sig and returns how long the process took to exit, and how.
func (p *process) signal(sig syscall.Signal, within time.Duration) (time.Duration, error) {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		return time.Since(start), err
	case <-time.After(within):
		p.t.Fatalf("%s did not exit within %v of %v", p.id, within, sig)
		return 0, nil
	}
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
