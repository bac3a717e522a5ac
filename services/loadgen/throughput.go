package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"sync"
	"time"
)

// throughputResult is one write-rate measurement: the median of its
// rounds.
type throughputResult struct {
	Name      string    `json:"name"`
	Clients   int       `json:"clients"`
	Writes    int       `json:"writes"`
	Errors    int       `json:"errors"`
	PerSecond float64   `json:"per_second"`
	Rounds    []float64 `json:"rounds_per_second"`
	Latency   spread    `json:"latency"` // p50 and p99: medians over the rounds
	// For bbs: creates per committed batch, and database statements per
	// create (BEGIN and COMMIT not counted), over all rounds.
	MeanBatch       float64 `json:"mean_batch,omitempty"`
	QueriesPerWrite float64 `json:"db_queries_per_write,omitempty"`
	// The replicas' CPU time (user and kernel, all of them) per create,
	// in milliseconds: unlike the rate, it barely moves with what else
	// the machine runs, so it is the figure to compare a change by.
	ReplicaCPUms float64 `json:"replica_cpu_ms_per_write,omitempty"`
	// The loader's and Redis's CPU per create, in milliseconds: they
	// share the cores with the replicas.
	LoaderCPUms float64 `json:"loader_cpu_ms_per_write,omitempty"`
	RedisCPUms  float64 `json:"redis_cpu_ms_per_write,omitempty"`
}

func (b *bench) throughputAll(ctx context.Context) error {
	rs := b.c.replicas
	// Warm up connection pools and caches; not counted.
	if _, err := b.throughputRound(ctx, "warm-up", 16, b.targets(rs), time.Second); err != nil {
		return err
	}
	batches := map[int]float64{}
	for _, n := range b.opts.writers {
		for _, via := range [][]*replica{rs[:1], rs} {
			name := fmt.Sprintf("bbs via %d replica(s)", len(via))
			r, err := b.throughputRounds(ctx, name, n, via)
			if err != nil {
				return err
			}
			b.res.Throughput = append(b.res.Throughput, r)
			if len(via) == len(rs) {
				batches[n] = r.MeanBatch
			}
		}
	}
	pg, err := b.pgbenchAll(ctx, batches)
	if err != nil {
		return err
	}
	b.res.Throughput = append(b.res.Throughput, pg...)
	b.printThroughput()
	return nil
}

// throughputRounds runs opts.rounds rounds of n writers against rs and
// keeps the medians.
func (b *bench) throughputRounds(ctx context.Context, name string, n int, rs []*replica) (throughputResult, error) {
	all := b.c.replicas
	q0, err := metricSum(ctx, all, "bbs_db_queries_total")
	if err != nil {
		return throughputResult{}, err
	}
	bs0, bc0 := b.batchCounts(ctx)
	cpu0, err := b.replicaCPU()
	if err != nil {
		return throughputResult{}, err
	}
	self0, _ := cpuSeconds(os.Getpid())
	redis0, _ := cpuSeconds(b.c.redis.Process.Pid)
	var rounds []throughputResult
	for i := range b.opts.rounds {
		var profile *sync.WaitGroup
		if i == 0 && len(rs) == len(all) {
			profile = b.startProfile(ctx, fmt.Sprintf("cpu-writes-%dx%d", n, len(rs)), b.opts.writeTime)
		}
		r, err := b.throughputRound(ctx, name, n, b.targets(rs), b.opts.writeTime)
		if profile != nil {
			profile.Wait()
		}
		if err != nil {
			return throughputResult{}, err
		}
		rounds = append(rounds, r)
	}
	q1, err := metricSum(ctx, all, "bbs_db_queries_total")
	if err != nil {
		return throughputResult{}, err
	}
	bs1, bc1 := b.batchCounts(ctx)
	cpu1, err := b.replicaCPU()
	if err != nil {
		return throughputResult{}, err
	}
	self1, _ := cpuSeconds(os.Getpid())
	redis1, _ := cpuSeconds(b.c.redis.Process.Pid)
	out := medianOf(rounds)
	if n := sumWrites(rounds); n > 0 {
		out.QueriesPerWrite = (q1 - q0) / float64(n)
		out.ReplicaCPUms = (cpu1 - cpu0) / float64(n) * 1000
		out.LoaderCPUms = (self1 - self0) / float64(n) * 1000
		out.RedisCPUms = (redis1 - redis0) / float64(n) * 1000
	}
	if bc1 > bc0 {
		out.MeanBatch = (bs1 - bs0) / (bc1 - bc0)
	}
	return out, nil
}

// batchCounts reads the group commit's histogram over all replicas: creates
// committed in batches, and batches. A binary without group commit has
// none (0, 0).
func (b *bench) batchCounts(ctx context.Context) (sum, count float64) {
	sum, err1 := metricSum(ctx, b.c.replicas, "bbs_write_batch_size_sum")
	count, err2 := metricSum(ctx, b.c.replicas, "bbs_write_batch_size_count")
	if err1 != nil || err2 != nil {
		return 0, 0
	}
	return sum, count
}

func sumWrites(rs []throughputResult) int {
	n := 0
	for _, r := range rs {
		n += r.Writes
	}
	return n
}

// medianOf keeps each figure's median over the rounds (rate, p50 and p99
// separately), and the totals of writes and errors.
func medianOf(rs []throughputResult) throughputResult {
	med := func(f func(throughputResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	out := rs[0]
	out.Writes, out.Errors, out.Rounds = 0, 0, nil
	for _, r := range rs {
		out.Writes += r.Writes
		out.Errors += r.Errors
		out.Rounds = append(out.Rounds, math.Round(r.PerSecond))
	}
	out.PerSecond = med(func(r throughputResult) float64 { return r.PerSecond })
	out.Latency.P50 = med(func(r throughputResult) float64 { return r.Latency.P50 })
	out.Latency.P99 = med(func(r throughputResult) float64 { return r.Latency.P99 })
	out.Latency.P999 = med(func(r throughputResult) float64 { return r.Latency.P999 })
	out.Latency.Max = med(func(r throughputResult) float64 { return r.Latency.Max })
	return out
}

// throughputRound runs n closed-loop writers for d against targets.
func (b *bench) throughputRound(ctx context.Context, name string, n int, targets []string, d time.Duration) (throughputResult, error) {
	var (
		mu     sync.Mutex
		lats   []time.Duration
		errs   int
		first  error
		wg     sync.WaitGroup
		start  = time.Now()
		finish = start.Add(d)
	)
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rw := newRawWriter(b.writerSrcs[w%len(b.writerSrcs)])
			defer rw.close()
			var mine []time.Duration
			bad := 0
			var firstErr error
			for i := w; time.Now().Before(finish); i++ {
				lat, err := rw.create(ctx, targets[i%len(targets)])
				if err != nil {
					bad++
					firstErr = err
					continue
				}
				mine = append(mine, lat)
			}
			mu.Lock()
			lats = append(lats, mine...)
			errs += bad
			if first == nil {
				first = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if errs > 0 {
		fmt.Fprintf(b.out, "  %s, %d writers: %d writes failed, first: %v\n", name, n, errs, first)
	}
	if ctx.Err() != nil {
		return throughputResult{}, ctx.Err()
	}
	return throughputResult{
		Name:      name,
		Clients:   n,
		Writes:    len(lats),
		Errors:    errs,
		PerSecond: float64(len(lats)) / elapsed.Seconds(),
		Latency:   spreadOfDurations(lats),
	}, nil
}
