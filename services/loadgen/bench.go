package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// allSteps are the parts of a run, in the order they run (-steps).
var allSteps = []string{"cost", "writes", "fanout", "idle"}

// bench holds the cluster, the clients and the results of one run.
type bench struct {
	opts options
	out  io.Writer
	c    *cluster
	db   *pgx.Conn     // reads the committed version
	rdb  *redis.Client // reads command counts
	w    *writers
	// writerSrcs are the writers' source addresses: 100, so the limiter sees
	// many clients, as it would from many users.
	writerSrcs []netip.Addr
	ss         *streamSet // the fan-out streams, grown point by point
	res        results
	srcsSS     []netip.Addr
}

func newBench(ctx context.Context, o options, out io.Writer) (*bench, error) {
	c, err := startCluster(ctx, o)
	if err != nil {
		return nil, err
	}
	ps, err := newPollers()
	if err != nil {
		c.close()
		return nil, err
	}
	b := &bench{opts: o, out: out, c: c, ss: &streamSet{pollers: ps}}
	if b.db, err = pgx.Connect(ctx, c.dbURL); err != nil {
		c.close()
		return nil, err
	}
	b.rdb = redis.NewClient(&redis.Options{Addr: c.redisAddr})
	// 500 stream sources keep every address under the per-client stream
	// cap (50 per replica) even with 10,000 streams on one replica; 100
	// writer sources spread writes the way many users would.
	b.srcsSS = sources(1, 500)
	b.writerSrcs = sources(3, 100)
	b.w = newWriters(b.writerSrcs)
	b.res = results{
		Command: "loadgen " + strings.Join(os.Args[1:], " "),
		Started: time.Now().UTC(),
		Machine: machine{
			Cores:         runtime.NumCPU(),
			CPU:           cpuModel(),
			Go:            runtime.Version(),
			OpenFileLimit: openFileLimit(),
			Replicas:      o.replicas,
		},
	}
	return b, nil
}

func (b *bench) close() {
	b.ss.close()
	b.w.close()
	if b.db != nil {
		b.db.Close(context.Background())
	}
	if b.rdb != nil {
		b.rdb.Close()
	}
	b.c.close()
}

func (b *bench) run(ctx context.Context) error {
	start := time.Now()
	b.header()
	steps := []struct {
		name, step string
		do         func(context.Context) error
	}{
		{"cost with 1 stream", "cost", func(ctx context.Context) error { return b.cost(ctx, 1) }},
		{"write throughput", "writes", b.throughputAll},
		{"fan-out", "fanout", b.fanoutAll},
		{"cost with many streams", "cost", func(ctx context.Context) error { return b.cost(ctx, len(b.ss.streams)) }},
		{"idle streams", "idle", b.idle},
	}
	for _, s := range steps {
		if !b.opts.steps[s.step] {
			continue
		}
		if err := s.do(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	b.res.Seconds = time.Since(start).Seconds()
	return b.save()
}

func (b *bench) targets(rs []*replica) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Addr
	}
	return out
}

func (b *bench) version(ctx context.Context) (int64, error) {
	var v int64
	err := b.db.QueryRow(ctx, "SELECT v FROM bbs_version WHERE id = 1").Scan(&v)
	return v, err
}

// serverPIDs are the processes whose CPU a delivery costs: the replicas
// and Redis.
func (b *bench) serverPIDs() []int {
	pids := []int{b.c.redis.Process.Pid}
	for _, r := range b.c.replicas {
		pids = append(pids, r.pid())
	}
	return pids
}

// replicaCPU is the CPU time all replicas have used.
func (b *bench) replicaCPU() (float64, error) {
	pids := make([]int, len(b.c.replicas))
	for i, r := range b.c.replicas {
		pids[i] = r.pid()
	}
	return cpuOf(pids...)
}

// randomTarget picks a replica for one write.
func (b *bench) randomTarget() string {
	return b.c.replicas[rand.IntN(len(b.c.replicas))].Addr
}
