package main

import (
	"context"
	"strconv"
	"time"
)

// idleResult is what idle streams cost one replica.
type idleResult struct {
	Streams             int     `json:"streams"`
	RSSBeforeMiB        float64 `json:"rss_before_mib"`
	RSSAfterMiB         float64 `json:"rss_after_mib"`
	KiBPerStream        float64 `json:"rss_kib_per_stream"`
	HeapKiBPerStream    float64 `json:"heap_inuse_kib_per_stream"`
	GoroutinesPerStream float64 `json:"goroutines_per_stream"`
	StreamsIn2GiB       int     `json:"streams_in_2gib"`
	OpenFileLimit       string  `json:"open_file_limit"`
	Limit               string  `json:"limited_by"`
}

// idle starts a fresh replica, holds opts.idle streams on it and reads its
// resident memory before and after.
func (b *bench) idle(ctx context.Context) error {
	b.ss.close() // the loader's own descriptors are limited too
	b.ss = &streamSet{pollers: b.ss.pollers}
	r, err := b.c.startReplica(ctx, "idle", false)
	if err != nil {
		return err
	}
	defer r.stop()
	time.Sleep(time.Second)
	before, err := measureReplica(ctx, r)
	if err != nil {
		return err
	}
	if err := b.ss.open(ctx, b.opts.idle, []string{r.Addr}, b.srcsSS); err != nil {
		return err
	}
	time.Sleep(3 * time.Second)
	after, err := measureReplica(ctx, r)
	if err != nil {
		return err
	}
	n := float64(b.opts.idle)
	per := float64(after.rss-before.rss) / n
	res := idleResult{
		Streams:             b.opts.idle,
		RSSBeforeMiB:        float64(before.rss) / (1 << 20),
		RSSAfterMiB:         float64(after.rss) / (1 << 20),
		KiBPerStream:        per / 1024,
		HeapKiBPerStream:    (after.heap - before.heap) / n / 1024,
		GoroutinesPerStream: (after.goroutines - before.goroutines) / n,
		OpenFileLimit:       openFileLimit(),
		Limit:               "memory",
	}
	if per > 0 {
		res.StreamsIn2GiB = int(float64(int64(2<<30)-before.rss) / per)
	}
	if lim, err := strconv.Atoi(res.OpenFileLimit); err == nil && lim < res.StreamsIn2GiB {
		res.Limit = "open files (" + res.OpenFileLimit + " per process): memory alone would allow " + strconv.Itoa(res.StreamsIn2GiB)
	}
	b.res.Idle = res
	b.printIdle(res)
	b.ss.close()
	return nil
}

// replicaMemory is what one replica holds at a moment.
type replicaMemory struct {
	rss        int64
	heap       float64
	goroutines float64
}

func measureReplica(ctx context.Context, r *replica) (replicaMemory, error) {
	var m replicaMemory
	var err error
	if m.rss, err = rssBytes(r.pid()); err != nil {
		return m, err
	}
	if m.goroutines, err = metric(ctx, r, "go_goroutines"); err != nil {
		return m, err
	}
	m.heap, err = metric(ctx, r, "go_memstats_heap_inuse_bytes")
	return m, err
}
