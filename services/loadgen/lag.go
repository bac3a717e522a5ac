package main

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// lagCounts is the replicas' own delivery-lag histogram
// (bbs_delivery_lag_seconds: a change's COMMIT to its frame handed to
// every stream's socket), summed over replicas and origins: cumulative
// count per bucket bound.
type lagCounts map[float64]float64

// deliveryLag reads the histogram from every replica; a binary without it
// gives an empty one.
func deliveryLag(ctx context.Context, rs []*replica) lagCounts {
	out := lagCounts{}
	for _, r := range rs {
		_ = scrape(ctx, r, func(l string) {
			line, ok := strings.CutPrefix(l, "bbs_delivery_lag_seconds_bucket{")
			if !ok {
				return
			}
			_, rest, _ := strings.Cut(line, `le="`)
			le, count, ok := strings.Cut(rest, `"} `)
			if !ok {
				return
			}
			bound, err1 := strconv.ParseFloat(le, 64)
			n, err2 := strconv.ParseFloat(count, 64)
			if err1 == nil && err2 == nil {
				out[bound] += n
			}
		})
	}
	return out
}

// lagQuantile is the bucket bound under which a fraction q of the
// observations between before and after fell (an upper bound: the
// histogram knows no better), in milliseconds; 0 when nothing was
// observed.
func lagQuantile(before, after lagCounts, q float64) float64 {
	var bounds []float64
	for b := range after {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		return 0
	}
	total := after[math.Inf(1)] - before[math.Inf(1)]
	if total <= 0 {
		return 0
	}
	for _, b := range bounds {
		if after[b]-before[b] >= q*total {
			return b * 1000
		}
	}
	return math.Inf(1)
}

// lagText prints a lag bound: "≤ 25 ms", or "-" when unknown.
func lagText(ms float64) string {
	switch {
	case ms == 0:
		return "-"
	case math.IsInf(ms, 1):
		return "> 30 s"
	}
	return fmt.Sprintf("≤ %g ms", ms)
}
