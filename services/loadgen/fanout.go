package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// fanoutResult is one fan-out point.
type fanoutResult struct {
	point
	Writes               int     `json:"writes"`
	WriteErrors          int64   `json:"write_errors"`
	Deliveries           int     `json:"deliveries"`
	DeliveriesPerSecond  float64 `json:"deliveries_per_second"`
	Latency              spread  `json:"latency"`
	WriteLatency         spread  `json:"write_latency"`
	Missing              int64   `json:"missing_events"`
	Resyncs              int     `json:"resyncs"`
	StreamsEnded         int     `json:"streams_ended"`
	ServerCPUSeconds     float64 `json:"server_cpu_seconds"`
	RedisCPUSeconds      float64 `json:"redis_cpu_seconds"`
	KernelShare          float64 `json:"server_cpu_kernel_share"`
	CPUPer1000Deliveries float64 `json:"cpu_seconds_per_1000_deliveries"`
	LoaderCPUSeconds     float64 `json:"loader_cpu_seconds"`
	Seconds              float64 `json:"seconds"`
	// The replicas' own delivery-lag histogram (COMMIT → frame handed to
	// the sockets), p50 and p99 as bucket bounds, in ms.
	DeliveryLagP50 float64 `json:"delivery_lag_p50_ms_at_most"`
	DeliveryLagP99 float64 `json:"delivery_lag_p99_ms_at_most"`
}

func (b *bench) fanoutAll(ctx context.Context) error {
	for _, p := range b.opts.points {
		r, err := b.fanout(ctx, p)
		if err != nil {
			return fmt.Errorf("%d streams × %d/s: %w", p.Streams, p.Rate, err)
		}
		b.res.Fanout = append(b.res.Fanout, r)
		b.printFanout(r)
	}
	return nil
}

// fanout grows the streams to p.Streams, then writes p.Rate creates per
// second on random replicas for opts.duration and measures every event's
// delay from its write's send to its arrival at each stream.
func (b *bench) fanout(ctx context.Context, p point) (fanoutResult, error) {
	if n := p.Streams - len(b.ss.streams); n > 0 {
		if err := b.ss.open(ctx, n, b.targets(b.c.replicas), b.srcsSS); err != nil {
			return fanoutResult{}, err
		}
	}
	time.Sleep(time.Second) // let the connects' work finish before counting CPU
	v0, err := b.version(ctx)
	if err != nil {
		return fanoutResult{}, err
	}
	if _, err := b.settle(ctx, v0, 10*time.Second); err != nil {
		return fanoutResult{}, err
	}
	b.ss.take(v0) // drop what came before
	pids := b.serverPIDs()
	cpu0, err := cpuOf(pids...)
	if err != nil {
		return fanoutResult{}, err
	}
	redis0, _ := cpuSeconds(b.c.redis.Process.Pid)
	lag0 := deliveryLag(ctx, b.c.replicas)
	kernel0 := kernelTime(pids...)
	self0, _ := cpuSeconds(os.Getpid())
	profile := b.startProfile(ctx, fmt.Sprintf("cpu-%dx%d", p.Streams, p.Rate), b.opts.duration)

	writes := int(float64(p.Rate) * b.opts.duration.Seconds())
	interval := time.Second / time.Duration(p.Rate)
	start := time.Now()
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
		mu     sync.Mutex
		wlat   []time.Duration
	)
	for i := range writes {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			select {
			case <-ctx.Done():
				return fanoutResult{}, ctx.Err()
			case <-time.After(d):
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := b.w.create(ctx, b.randomTarget())
			if err != nil {
				failed.Add(1)
				return
			}
			mu.Lock()
			wlat = append(wlat, d)
			mu.Unlock()
		}()
	}
	wg.Wait()
	final, err := b.version(ctx)
	if err != nil {
		return fanoutResult{}, err
	}
	if _, err := b.settle(ctx, final, 10*time.Second); err != nil {
		return fanoutResult{}, err
	}
	elapsed := time.Since(start)
	cpu1, err := cpuOf(pids...)
	if err != nil {
		return fanoutResult{}, err
	}
	self1, _ := cpuSeconds(os.Getpid())
	redis1, _ := cpuSeconds(b.c.redis.Process.Pid)
	kernel1 := kernelTime(pids...)
	lag1 := deliveryLag(ctx, b.c.replicas)
	profile.Wait()
	t := b.ss.take(final)
	r := fanoutResult{
		point:               p,
		Writes:              writes,
		WriteErrors:         failed.Load(),
		Deliveries:          len(t.latencies),
		DeliveriesPerSecond: float64(len(t.latencies)) / elapsed.Seconds(),
		Missing:             t.missing,
		Resyncs:             t.resyncs,
		StreamsEnded:        t.ended,
		ServerCPUSeconds:    cpu1 - cpu0,
		RedisCPUSeconds:     redis1 - redis0,
		WriteLatency:        spreadOfDurations(wlat),
		LoaderCPUSeconds:    self1 - self0,
		Seconds:             elapsed.Seconds(),
		Latency:             spreadOfMicros(t.latencies),
		DeliveryLagP50:      lagQuantile(lag0, lag1, 0.50),
		DeliveryLagP99:      lagQuantile(lag0, lag1, 0.99),
	}
	if r.ServerCPUSeconds > 0 {
		r.KernelShare = (kernel1 - kernel0) / r.ServerCPUSeconds
	}
	if r.Deliveries > 0 {
		r.CPUPer1000Deliveries = r.ServerCPUSeconds / float64(r.Deliveries) * 1000
	}
	return r, nil
}

// startProfile saves profiles of replica 1 over the next d when -profile
// is set: its CPU as name.pprof, and what it allocated as
// name-allocs.pprof.
func (b *bench) startProfile(ctx context.Context, name string, d time.Duration) *sync.WaitGroup {
	var wg sync.WaitGroup
	r := b.c.replicas[0]
	if b.opts.profileDir == "" || !r.pprof {
		return &wg
	}
	secs := max(1, int(d.Seconds()))
	for kind, file := range map[string]string{"profile": name, "allocs": name + "-allocs"} {
		wg.Go(func() {
			if err := b.saveProfile(ctx, r.internalURL(fmt.Sprintf("/debug/pprof/%s?seconds=%d", kind, secs)), file); err != nil {
				fmt.Fprintf(b.out, "  profile %s: %v\n", file, err)
			}
		})
	}
	return &wg
}

func (b *bench) saveProfile(ctx context.Context, url, name string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	if err := os.MkdirAll(b.opts.profileDir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(b.opts.profileDir, name+".pprof"))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
