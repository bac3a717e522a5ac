package soak

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
)

// adminToken is the ADMIN_TOKEN of every replica.
const adminToken = "soak-admin-token"

// cluster is what the soak runs against: one throwaway database, a
// redis-server of its own and three bbs processes, each reaching Postgres
// and Redis through its own TCP proxy so that one replica's connections
// can be cut or hung alone.
type cluster struct {
	t      *testing.T
	dir    string // logs and the binary
	bin    string
	dbURL  string // direct, for migrate and the model
	prefix string
	redis  *redisProc
	reps   []*replica
}

// buildBBS builds services/bbs from the working tree (or takes SOAK_BBS,
// a binary built beforehand).
func buildBBS(t *testing.T, dir string) string {
	if p := os.Getenv("SOAK_BBS"); p != "" {
		return p
	}
	bin := filepath.Join(dir, "bbs")
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not on PATH (or set SOAK_BBS to a bbs binary): %v", err)
	}
	cmd := exec.Command(goBin, "build", "-tags", "nomsgpack", "-o", bin, ".") // the tags `make build` uses
	cmd.Dir = filepath.Join("..", "bbs")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build services/bbs: %v\n%s", err, out)
	}
	t.Logf("built bbs in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

func startCluster(t *testing.T, dir string, n int) *cluster {
	c := &cluster{t: t, dir: dir, bin: buildBBS(t, dir)}
	c.dbURL = testenv.PostgresURL(t)
	migrate := exec.Command(c.bin, "migrate")
	migrate.Env = []string{"DATABASE_URL=" + c.dbURL, "LOG_LEVEL=warn"}
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("bbs migrate: %v\n%s", err, out)
	}
	c.redis = startRedis(t, dir)
	c.prefix = testenv.Name("soak:")
	pgHost := mustParse(t, c.dbURL).Host
	for i := range n {
		r := &replica{c: c, idx: i, name: fmt.Sprintf("r%d", i+1), port: testenv.FreePort(t)}
		r.pg = testenv.StartProxy(t, pgHost)
		r.rp = testenv.StartProxy(t, c.redis.addr())
		c.reps = append(c.reps, r)
	}
	t.Cleanup(c.stopAll)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, r := range c.reps {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = r.start() }()
	}
	wg.Wait()
	for i, r := range c.reps {
		if errs[i] != nil {
			t.Fatalf("%v; log in %s", errs[i], r.logPath())
		}
	}
	return c
}

func mustParse(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (c *cluster) stopAll() {
	for _, r := range c.reps {
		r.kill()
	}
}

// up lists the replicas a load balancer would send traffic to now.
func (c *cluster) up() []*replica {
	var out []*replica
	for _, r := range c.reps {
		if r.state() == stateUp {
			out = append(out, r)
		}
	}
	return out
}

// replica states as the test drives them.
const (
	stateDown     = "down"
	stateStarting = "starting"
	stateUp       = "up"
	statePaused   = "paused"
	stateDraining = "draining"
)

// replica is one bbs process, restarted on the same port after each kill.
type replica struct {
	c    *cluster
	idx  int
	name string
	port int
	pg   *testenv.Proxy // its Postgres connections
	rp   *testenv.Proxy // its Redis connections

	mu   sync.Mutex
	st   string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	exit error
}

func (r *replica) url() string     { return "http://127.0.0.1:" + strconv.Itoa(r.port) }
func (r *replica) logPath() string { return filepath.Join(r.c.dir, r.name+".log") }

func (r *replica) state() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

func (r *replica) env() []string {
	db := mustParse(r.c.t, r.c.dbURL)
	db.Host = r.pg.Addr()
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HTTP_ADDR=127.0.0.1:" + strconv.Itoa(r.port),
		"REPLICA_ID=" + r.name,
		"DATABASE_URL=" + db.String(),
		"REDIS_URL=redis://" + r.rp.Addr() + "/0",
		"REDIS_PREFIX=" + r.c.prefix,
		"ADMIN_TOKEN=" + adminToken,
		"SNAPSHOT_LIMIT=" + strconv.Itoa(windowLimit),
		"VERSION_CHECK=300ms",
		"SSE_HEARTBEAT=1s",
		"SSE_RETRY=300ms",
		"SHUTDOWN_GRACE=3s",
		"DRAIN_DELAY=500ms",
		"DRAIN_JITTER=200ms",
		"WRITE_RATE=1000000",
		"WRITE_BURST=1000000",
		"MAX_STREAMS_PER_CLIENT=0",
		"STREAM_RATE=0", // every model client is 127.0.0.1
		"INTERNAL_ADDR=127.0.0.1:0",
		"LOG_LEVEL=info",
	}
}

// start runs the process and waits (up to 20 s) until /readyz answers
// 200. It returns an error if the process exited meanwhile.
func (r *replica) start() error {
	logf, err := os.OpenFile(r.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(r.c.bin)
	cmd.Env = r.env()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	r.mu.Lock()
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		return err
	}
	done := make(chan struct{})
	r.cmd, r.done, r.st, r.exit = cmd, done, stateStarting, nil
	r.mu.Unlock()
	go func() {
		err := cmd.Wait()
		r.mu.Lock()
		r.exit = err
		if r.cmd == cmd {
			r.st = stateDown
		}
		r.mu.Unlock()
		close(done)
	}()
	cl := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(30 * time.Millisecond) {
		select {
		case <-done:
			r.mu.Lock()
			defer r.mu.Unlock()
			return fmt.Errorf("%s exited while starting: %v", r.name, r.exit)
		default:
		}
		resp, err := cl.Get(r.url() + "/readyz")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			r.mu.Lock()
			if r.cmd == cmd && r.st == stateStarting {
				r.st = stateUp
			}
			r.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("%s not ready after 20s", r.name)
}

// signal sends sig to the running process; false if there is none.
func (r *replica) signal(sig syscall.Signal, next string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.st == stateDown {
		return false
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		return false
	}
	r.st = next
	return true
}

// wait waits up to d for the process to exit and returns its error.
func (r *replica) wait(d time.Duration) (exited bool, err error) {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	if done == nil {
		return true, nil
	}
	select {
	case <-done:
		r.mu.Lock()
		defer r.mu.Unlock()
		return true, r.exit
	case <-time.After(d):
		return false, nil
	}
}

// kill ends the process for good (SIGCONT first is not needed: SIGKILL
// ends a stopped process too).
func (r *replica) kill() {
	r.signal(syscall.SIGKILL, stateDown)
	r.wait(5 * time.Second)
}

// redisProc is the test's own redis-server, killed, paused and restarted
// on the same port.
type redisProc struct {
	t    *testing.T
	port int
	dir  string
	mu   sync.Mutex
	cmd  *exec.Cmd
}

func startRedis(t *testing.T, dir string) *redisProc {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server not found: %v\ninstall it: apt-get install -y redis-server", err)
	}
	r := &redisProc{t: t, port: testenv.FreePort(t), dir: dir}
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.kill)
	return r
}

func (r *redisProc) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *redisProc) start() error {
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	r.mu.Lock()
	r.cmd = cmd
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if c, err := (&net.Dialer{}).DialContext(ctx, "tcp", r.addr()); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s did not start", r.addr())
}

func (r *redisProc) signal(sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(sig)
	}
}

func (r *redisProc) kill() {
	r.mu.Lock()
	cmd := r.cmd
	r.cmd = nil
	r.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}
