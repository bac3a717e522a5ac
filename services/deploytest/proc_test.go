package deploytest

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
)

// replica is a bbs process the test started, on a fixed port so it can be
// stopped and started again behind the same load balancer entry.
type replica struct {
	t        testing.TB
	ID       string
	Addr     string // 127.0.0.1:port
	Internal string // 127.0.0.1:port of the internal listener (metrics, readiness details)
	env      []string
	log      string
	cmd      *exec.Cmd
	done     chan error
}

// newReplica prepares a replica; env holds the server's variables.
func newReplica(t testing.TB, id string, port int, env map[string]string) *replica {
	t.Helper()
	r := &replica{t: t, ID: id, Addr: fmt.Sprintf("127.0.0.1:%d", port), log: filepath.Join(t.TempDir(), id+".log"),
		Internal: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	var names []string
	for k, v := range env {
		r.env = append(r.env, k+"="+v)
		names = append(names, k)
	}
	checkServerEnv(t, "the test's replica", names)
	r.env = append(r.env, "HTTP_ADDR="+r.Addr, "INTERNAL_ADDR="+r.Internal, "REPLICA_ID="+id)
	t.Cleanup(r.kill)
	return r
}

// start runs the process and waits until /readyz answers 200.
func (r *replica) start() {
	r.t.Helper()
	logf, err := os.OpenFile(r.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	r.cmd = exec.Command(bbsBinary(r.t))
	// Only what the test sets: nothing from the developer's shell leaks in.
	r.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, r.env...)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	logf.Close()
	r.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(r.cmd, r.done)
	r.waitReady(15 * time.Second)
}

func (r *replica) waitReady(within time.Duration) {
	r.t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-r.done:
			r.done <- err
			r.t.Fatalf("%s exited while starting: %v\n%s", r.ID, err, r.tail())
		default:
		}
		if resp, err := http.Get("http://" + r.Addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	r.t.Fatalf("%s not ready after %v\n%s", r.ID, within, r.tail())
}

// terminate sends SIGTERM, as Kubernetes does, and returns how long the
// drain took; the process must exit 0 within the given time.
func (r *replica) terminate(within time.Duration) time.Duration {
	r.t.Helper()
	start := time.Now()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		r.t.Fatal(err)
	}
	select {
	case err := <-r.done:
		r.cmd = nil
		if err != nil {
			r.t.Errorf("%s exited with %v after SIGTERM, want 0\n%s", r.ID, err, r.tail())
		}
		return time.Since(start)
	case <-time.After(within):
		r.t.Fatalf("%s did not exit within %v of SIGTERM\n%s", r.ID, within, r.tail())
		return 0
	}
}

func (r *replica) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		<-r.done
		r.cmd = nil
	}
}

// tail is the end of the replica's log, for failure messages.
func (r *replica) tail() string {
	b, _ := os.ReadFile(r.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}
