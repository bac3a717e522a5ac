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
	rss0, err := rssBytes(r.pid())
	if err != nil {
		return err
	}
	g0, err := metric(ctx, r, "go_goroutines")
	if err != nil {
		return err
	}
	h0, err := metric(ctx, r, "go_memstats_heap_inuse_bytes")
	if err != nil {
		return err
	}
	if err := b.ss.open(ctx, b.opts.idle, []string{r.addr}, b.srcsSS); err != nil {
		return err
	}
	time.Sleep(3 * time.Second)
	rss1, err := rssBytes(r.pid())
	if err != nil {
		return err
	}
	g1, err := metric(ctx, r, "go_goroutines")
	if err != nil {
		return err
	}
	h1, err := metric(ctx, r, "go_memstats_heap_inuse_bytes")
	if err != nil {
		return err
	}
	n := float64(b.opts.idle)
	per := float64(rss1-rss0) / n
	res := idleResult{
		Streams:             b.opts.idle,
		RSSBeforeMiB:        float64(rss0) / (1 << 20),
		RSSAfterMiB:         float64(rss1) / (1 << 20),
		KiBPerStream:        per / 1024,
		HeapKiBPerStream:    (h1 - h0) / n / 1024,
		GoroutinesPerStream: (g1 - g0) / n,
		OpenFileLimit:       openFileLimit(),
		Limit:               "memory",
	}
	if per > 0 {
		res.StreamsIn2GiB = int(float64(int64(2<<30)-rss0) / per)
	}
	if lim, err := strconv.Atoi(res.OpenFileLimit); err == nil && lim < res.StreamsIn2GiB {
		res.Limit = "open files (" + res.OpenFileLimit + " per process): memory alone would allow " + strconv.Itoa(res.StreamsIn2GiB)
	}
	b.res.Idle = res
	b.printIdle(res)
	b.ss.close()
	return nil
}
