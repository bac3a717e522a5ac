package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/bbsboard/bbs/pkg/testenv"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

const (
	defaultRedis = "redis://127.0.0.1:6379/0"

	redisHelp = "start Redis: apt-get install -y redis-server && redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no (or set TEST_REDIS_URL)"
)

// randomName returns prefix followed by random hex digits.
func randomName(prefix string) string { return testenv.Name(prefix) }

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// The bbs binary is built once per test run, from the source next door.
var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// bbsBinary builds services/bbs. It runs `go build` in that directory, so
// the workspace (go.work) is used when there is one and the module's own
// replace line when there is not.
func bbsBinary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "bbs-e2e-")
		if build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "bbs")
		cmd := exec.Command(goTool(), "build", "-tags", "nomsgpack", "-o", build.path, ".") // the tags `make build` uses
		cmd.Dir = filepath.Join("..", "bbs")
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build services/bbs: %v\n%s", err, out)
			return
		}
		t.Logf("built bbs in %v", time.Since(start).Round(time.Millisecond))
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// goTool finds the go command: on PATH, else next to the Go that built us.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

// createDatabase creates an empty database and drops it when the test ends.
func createDatabase(t *testing.T) string {
	t.Helper()
	return testenv.PostgresURL(t)
}

// redisPrefix checks that Redis answers and returns a key prefix that is
// this test's alone; its keys are deleted when the test ends. The braces
// keep every key in one Redis Cluster slot, like the default "{bbs}".
func redisPrefix(t *testing.T) (redisURL, prefix string) {
	t.Helper()
	redisURL = envOr("TEST_REDIS_URL", defaultRedis)
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatalf("TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		t.Fatalf("cannot reach Redis at %s: %v\n%s", redisURL, err, redisHelp)
	}
	prefix = "{" + randomName("bbs-e2e-") + "}"
	t.Cleanup(func() {
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("clean Redis keys %s*: %v", prefix, err)
		}
	})
	return redisURL, prefix
}

// cluster is a set of bbs replicas on one database and one Redis prefix.
type cluster struct {
	t        *testing.T
	bin      string
	env      []string
	dbURL    string
	replicas []*replica
}

type clusterOptions struct {
	replicas int
	env      []string // more KEY=value settings for every replica
	// seed runs on the migrated database before any replica starts.
	seed func(ctx context.Context, db *pgx.Conn) error
}

func startCluster(t *testing.T, opts clusterOptions) *cluster {
	t.Helper()
	bin := bbsBinary(t)
	dbURL := createDatabase(t)
	redisURL, prefix := redisPrefix(t)
	c := &cluster{t: t, bin: bin, dbURL: dbURL, env: []string{
		"DATABASE_URL=" + dbURL,
		"REDIS_URL=" + redisURL,
		"REDIS_PREFIX=" + prefix,
		"WRITE_RATE=100000", // the tests write faster than people do
		"WRITE_BURST=1000",
		"SSE_RETRY=1s",       // reconnect quickly when a replica dies
		"SHUTDOWN_GRACE=3s",  // cleanup should not wait 25 s
		"DRAIN_JITTER=100ms", // nor 5 s
		"DRAIN_DELAY=0s",     // nor 5 more: no load balancer in front to leave
		"LOG_LEVEL=info",     // "listening" says which port it took
		// Every browser and test client here is 127.0.0.1, reloading and
		// reconnecting far more often than a person (the page retries a
		// refused stream itself); and each replica's internal listener on
		// a port of its own, not the shared default :9090.
		"STREAM_RATE=0",
		"INTERNAL_ADDR=127.0.0.1:0",
	}}
	c.env = append(c.env, opts.env...)

	migrate := exec.Command(bin, "migrate")
	migrate.Env = append(os.Environ(), c.env...)
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("bbs migrate: %v\n%s", err, out)
	}
	if opts.seed != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		db, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		err = opts.seed(ctx, db)
		db.Close(context.Background())
		if err != nil {
			t.Fatalf("seed: %v", err)
		}
	}

	// Start them side by side: each takes a moment to load its first page.
	n := max(opts.replicas, 1)
	c.replicas = make([]*replica, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { c.replicas[i], errs[i] = c.start(fmt.Sprintf("r%d", i+1)) })
	}
	wg.Wait()
	for _, r := range c.replicas {
		if r != nil {
			t.Cleanup(r.stop)
		}
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range c.replicas {
				t.Logf("--- log of replica %s (last lines) ---\n%s", r.id, r.logs.tail(40))
			}
		}
	})
	return c
}

// replica is one bbs process.
type replica struct {
	id     string
	url    string
	cmd    *exec.Cmd
	exited chan struct{}
	logs   *logBuffer
}

func (c *cluster) start(id string) (*replica, error) {
	cmd := exec.Command(c.bin)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Env = append(cmd.Env, "HTTP_ADDR=127.0.0.1:0", "REPLICA_ID="+id)
	r := &replica{id: id, cmd: cmd, exited: make(chan struct{}), logs: &logBuffer{}}
	cmd.Stderr = r.logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", id, err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			r.logs.Write(append(sc.Bytes(), '\n'))
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				select {
				case addr <- line.Addr:
				default:
				}
			}
		}
		_ = cmd.Wait()
		close(r.exited)
	}()
	select {
	case a := <-addr:
		r.url = "http://" + a
	case <-r.exited:
		return r, fmt.Errorf("replica %s exited at start:\n%s", id, r.logs.tail(20))
	case <-time.After(20 * time.Second):
		return r, fmt.Errorf("replica %s did not start listening:\n%s", id, r.logs.tail(20))
	}
	return r, r.waitReady(20 * time.Second)
}

func (r *replica) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		res, err := http.Get(r.url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("replica %s not ready within %v:\n%s", r.id, within, r.logs.tail(20))
}

// kill ends the replica with SIGKILL: a crash, no draining.
func (r *replica) kill(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", r.id, err)
	}
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("replica %s still running after SIGKILL", r.id)
	}
}

// stop asks the replica to drain (SIGTERM) and kills it if it takes long.
func (r *replica) stop() {
	select {
	case <-r.exited:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
}

// logBuffer keeps a replica's output for the failure report.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// tail returns the last lines, leaving out those that contain any of skip
// (noise such as Chromium's complaints about the missing D-Bus).
func (l *logBuffer) tail(lines int, skip ...string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	all := strings.Split(strings.TrimRight(l.buf.String(), "\n"), "\n")
	all = slices.DeleteFunc(all, func(line string) bool {
		return slices.ContainsFunc(skip, func(s string) bool { return strings.Contains(line, s) })
	})
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// ---------------------------------------------------------------------
// The JSON API, as the tests use it to set up and check.

type apiTopic struct {
	ID        int64  `json:"id"`
	Comment   string `json:"comment"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

type apiList struct {
	Version int64      `json:"version"`
	Topics  []apiTopic `json:"topics"`
}

var apiClient = &http.Client{Timeout: 10 * time.Second}

func apiDo(t *testing.T, method, url, token string, body any) (int, []byte) {
	t.Helper()
	req, err := testenv.JSONRequest(method, url, token, body)
	if err != nil {
		t.Fatal(err)
	}
	res, err := apiClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return res.StatusCode, out
}

// postTopic creates a topic through base and returns it with its token.
func postTopic(t *testing.T, base, comment string) (apiTopic, string) {
	t.Helper()
	status, body := apiDo(t, http.MethodPost, base+"/api/topics", "", map[string]string{"comment": comment})
	if status != http.StatusCreated {
		t.Fatalf("POST /api/topics: %d %s", status, body)
	}
	var out struct {
		Topic apiTopic `json:"topic"`
		Token string   `json:"token"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Topic, out.Token
}

func listTopics(t *testing.T, base string) apiList {
	t.Helper()
	status, body := apiDo(t, http.MethodGet, base+"/api/topics", "", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /api/topics: %d %s", status, body)
	}
	var out apiList
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
