package soak

import (
	"context"
	"fmt"
	"net"
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
	dir    string // logs
	bin    string
	dbURL  string // direct, for migrate and the model
	prefix string
	redis  *redisProc
	reps   []*replica
}

// bbsBinary is the bbs the soak runs: SOAK_BBS (or BBS_BIN), a binary
// built beforehand, else services/bbs built from the working tree.
func bbsBinary(t *testing.T) string {
	if p := os.Getenv("SOAK_BBS"); p != "" {
		return p
	}
	return testenv.BBS(t)
}

func startCluster(t *testing.T, dir string, n int) *cluster {
	c := &cluster{t: t, dir: dir, bin: bbsBinary(t)}
	c.dbURL = testenv.PostgresURL(t)
	testenv.Migrate(t, c.bin, c.dbURL)
	c.redis = startRedis(t, dir)
	c.prefix = testenv.Name("soak:")
	pgHost := mustParse(t, c.dbURL).Host
	for i := range n {
		r := &replica{c: c, idx: i, name: fmt.Sprintf("r%d", i+1)}
		r.pg = testenv.StartProxy(t, pgHost)
		r.rp = testenv.StartProxy(t, c.redis.addr())
		proc, err := testenv.NewReplica(testenv.ReplicaSpec{
			ID: r.name, Bin: c.bin, Env: r.env(), LogFile: filepath.Join(dir, r.name+".log"),
		})
		if err != nil {
			t.Fatal(err)
		}
		r.proc = proc
		c.reps = append(c.reps, r)
	}
	t.Cleanup(c.stopAll)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, r := range c.reps {
		wg.Go(func() { errs[i] = r.start() })
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
	proc *testenv.Replica
	pg   *testenv.Proxy // its Postgres connections
	rp   *testenv.Proxy // its Redis connections

	mu sync.Mutex
	st string
}

func (r *replica) url() string     { return r.proc.URL }
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
		"LOG_LEVEL=info",
	}
}

// start runs the process and waits (up to 20 s) until /readyz answers
// 200. It returns an error if the process exited meanwhile.
func (r *replica) start() error {
	r.mu.Lock()
	if err := r.proc.Launch(); err != nil {
		r.mu.Unlock()
		return err
	}
	done := r.proc.Exited()
	r.st = stateStarting
	r.mu.Unlock()
	go func() {
		<-done
		r.mu.Lock()
		if r.proc.Exited() == done { // not started again meanwhile
			r.st = stateDown
		}
		r.mu.Unlock()
	}()
	if err := r.proc.WaitReady(context.Background()); err != nil {
		return err
	}
	r.mu.Lock()
	if r.proc.Exited() == done && r.st == stateStarting {
		r.st = stateUp
	}
	r.mu.Unlock()
	return nil
}

// signal sends sig to the running process and moves it to state next;
// false if there is no process.
func (r *replica) signal(sig syscall.Signal, next string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.st == stateDown || r.proc.Signal(sig) != nil {
		return false
	}
	r.st = next
	return true
}

// wait waits up to d for the process to exit and returns its error.
func (r *replica) wait(d time.Duration) (exited bool, err error) { return r.proc.Wait(d) }

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
