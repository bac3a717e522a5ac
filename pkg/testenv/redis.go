package testenv

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// RedisServer is a redis-server of the test's own, for tests that stop and
// start Redis without disturbing the shared one.
type RedisServer struct {
	t    testing.TB
	Port int
	dir  string
	args []string // extra redis-server flags
	cmd  *exec.Cmd
}

// StartRedis starts a throwaway redis-server on a free loopback port.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("testenv: redis-server not found: %v\ninstall it: apt-get install -y redis-server", err)
	}
	r := &RedisServer{t: t, Port: FreePort(t), dir: t.TempDir()}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// URL is the server's redis:// URL.
func (r *RedisServer) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port) }

// Start (re)starts the server on its port and waits until it accepts.
func (r *RedisServer) Start() {
	r.t.Helper()
	args := append([]string{"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir}, r.args...)
	r.cmd = exec.Command("redis-server", args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("testenv: start redis-server: %v", err)
	}
	Eventually(r.t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)))
		if err != nil {
			return fmt.Errorf("testenv: redis-server on port %d did not start: %w", r.Port, err)
		}
		c.Close()
		return nil
	})
}

// Stop kills the server (SIGKILL: a crash, not a clean shutdown).
func (r *RedisServer) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return port
}
