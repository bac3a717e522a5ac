package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/jackc/pgx/v5"
)

// cluster is what the bench runs against: databases, a redis-server of
// its own (so its CPU and command counts are the bench's alone) and bbs
// processes, all on 127.0.0.1 and all removed by close.
type cluster struct {
	opts      options
	dir       string // logs, kept under the results folder
	databases []string
	dbURL     string // the board's database
	redis     *exec.Cmd
	redisAddr string
	replicas  []*replica
}

// replica is one bbs process of the bench's.
type replica struct {
	*testenv.Replica
	pprof bool // PPROF=on: /debug/pprof/ on the internal listener
}

// internalURL is a path on the internal listener (INTERNAL_ADDR), where
// the replica serves what is never on its public port.
func (r *replica) internalURL(path string) string { return "http://" + r.Internal + path }
func (r *replica) pid() int                       { return r.Pid() }

// stop ends a replica with SIGTERM, as an orchestrator would.
func (r *replica) stop() { _ = r.Stop(10 * time.Second) }

func startCluster(ctx context.Context, o options) (*cluster, error) {
	for _, bin := range []string{o.bbs, o.redisServer} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s not found (build bbs with `make build`; redis-server: apt-get install -y redis-server): %w", bin, err)
		}
	}
	// Logs stay in the results folder, for reading after a run.
	dir, err := filepath.Abs(filepath.Join(o.out, "logs"))
	if err == nil {
		_ = os.RemoveAll(dir)
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return nil, err
	}
	c := &cluster{opts: o, dir: dir}
	if c.dbURL, err = c.createDatabase(ctx, "bbs_bench_"); err != nil {
		c.close()
		return nil, err
	}
	if err := c.migrate(ctx, c.dbURL); err != nil {
		c.close()
		return nil, err
	}
	if err := c.startRedis(ctx); err != nil {
		c.close()
		return nil, err
	}
	for i := range o.replicas {
		if _, err := c.startReplica(ctx, fmt.Sprintf("r%d", i+1), o.profileDir != ""); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// createDatabase makes a throwaway database and returns its URL.
func (c *cluster) createDatabase(ctx context.Context, prefix string) (string, error) {
	conn, err := pgx.Connect(ctx, c.opts.postgres)
	if err != nil {
		return "", fmt.Errorf("connect to Postgres (-postgres or TEST_DATABASE_URL): %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	name := fmt.Sprintf("%s%d", prefix, time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	c.databases = append(c.databases, name)
	u, err := url.Parse(c.opts.postgres)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

func (c *cluster) migrate(ctx context.Context, dbURL string) error {
	return testenv.RunMigrate(ctx, c.opts.bbs, dbURL)
}

func (c *cluster) startRedis(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	c.redisAddr = "127.0.0.1:" + strconv.Itoa(port)
	c.redis = exec.Command(c.opts.redisServer, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--dir", c.dir, "--logfile", filepath.Join(c.dir, "redis.log"))
	if err := c.redis.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	return waitFor(ctx, "redis-server", func() error {
		conn, err := net.DialTimeout("tcp", c.redisAddr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	})
}

// startReplica runs one bbs process. The write limit is raised so that
// the throughput runs measure the server, not the limiter's budget; the
// limiter still runs (one Redis call per write) and is counted.
func (c *cluster) startReplica(ctx context.Context, id string, debug bool) (*replica, error) {
	env := []string{
		"DATABASE_URL=" + c.dbURL,
		"REDIS_URL=redis://" + c.redisAddr + "/0",
		"WRITE_RATE=6000000",
		"WRITE_BURST=100000",
		// Every stream of the bench comes from this one address.
		"STREAM_RATE=0",
		"LOG_LEVEL=warn",
		"SHUTDOWN_GRACE=5s",
		"DRAIN_JITTER=1s",
		"DRAIN_DELAY=0s", // nothing routes here but the loader itself
	}
	if v := os.Getenv("BENCH_GOMAXPROCS"); v != "" {
		env = append(env, "GOMAXPROCS="+v)
	}
	if debug {
		env = append(env, "PPROF=on")
	}
	// Logs stay in the results folder, for reading after a run.
	logPath := filepath.Join(c.dir, id+".log")
	p, err := testenv.NewReplica(testenv.ReplicaSpec{ID: id, Bin: c.opts.bbs, Args: []string{"serve"}, Env: env, LogFile: logPath})
	if err != nil {
		return nil, err
	}
	r := &replica{Replica: p, pprof: debug}
	c.replicas = append(c.replicas, r) // close stops it, started or not
	if err := p.Start(ctx); err != nil {
		return nil, fmt.Errorf("%w (log: %s)", err, logPath)
	}
	return r, nil
}

func (c *cluster) close() {
	for _, r := range c.replicas {
		r.stop()
	}
	if c.redis != nil && c.redis.Process != nil {
		_ = c.redis.Process.Kill()
		_ = c.redis.Wait()
	}
	if len(c.databases) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, c.opts.postgres); err == nil {
			for _, name := range c.databases {
				if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
					fmt.Fprintf(os.Stderr, "loadgen: drop database %s: %v\n", name, err)
				}
			}
			conn.Close(ctx)
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitFor(ctx context.Context, what string, ok func() error) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := ok()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not up after 20s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
