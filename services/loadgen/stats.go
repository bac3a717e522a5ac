package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// spread is a latency distribution in milliseconds.
type spread struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p99_9_ms"`
	Max  float64 `json:"max_ms"`
}

// spreadOfMicros sorts us in place and reads its percentiles (nearest
// rank).
func spreadOfMicros(us []int32) spread {
	if len(us) == 0 {
		return spread{}
	}
	slices.Sort(us)
	at := func(q float64) float64 {
		i := int(q*float64(len(us))+0.5) - 1
		return float64(us[min(max(i, 0), len(us)-1)]) / 1000
	}
	return spread{N: len(us), P50: at(0.50), P99: at(0.99), P999: at(0.999), Max: float64(us[len(us)-1]) / 1000}
}

func spreadOfDurations(ds []time.Duration) spread {
	us := make([]int32, len(ds))
	for i, d := range ds {
		us[i] = int32(min(d.Microseconds(), 1<<31-1))
	}
	return spreadOfMicros(us)
}

// scrape reads a replica's /metrics, on its internal listener, line by
// line.
func scrape(ctx context.Context, r *replica, line func(string)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.internalURL("/metrics"), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s /metrics: %w", r.ID, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line(sc.Text())
	}
	return sc.Err()
}

// metric reads one unlabelled sample from a replica's /metrics.
func metric(ctx context.Context, r *replica, name string) (float64, error) {
	var v string
	found := false
	err := scrape(ctx, r, func(l string) {
		if s, ok := strings.CutPrefix(l, name+" "); ok && !found {
			v, found = s, true
		}
	})
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("%s /metrics: no %s", r.ID, name)
	}
	return strconv.ParseFloat(v, 64)
}

// metricSum adds one metric over several replicas.
func metricSum(ctx context.Context, rs []*replica, name string) (float64, error) {
	var sum float64
	for _, r := range rs {
		v, err := metric(ctx, r, name)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

// commandStats reads Redis's calls per command (INFO commandstats).
func commandStats(ctx context.Context, rdb *redis.Client) (map[string]int64, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("redis INFO commandstats: %w", err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				out[name] = n
			}
		}
	}
	return out, nil
}

// commandDelta is after minus before, leaving out the INFO calls that read
// the counters.
func commandDelta(before, after map[string]int64) (total int64, per map[string]int64) {
	per = map[string]int64{}
	for name, n := range after {
		if name == "info" {
			continue
		}
		if d := n - before[name]; d > 0 {
			per[name] = d
			total += d
		}
	}
	return total, per
}
