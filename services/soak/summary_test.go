package soak

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// report prints what the run did and checked and, on failure, the seed,
// the schedule up to the first divergence and every divergence found.
func (h *harness) report(dur time.Duration, conv []time.Duration) {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("soak: seed %d, SOAK_TIME %v, ran %v in %d cycles", h.seed, dur, h.journal.since().Round(time.Millisecond), len(conv))
	p("operations (kind, answer, the fault that explains it):")
	b.WriteString(strings.Join(h.stats.lines("ops "), "\n") + "\n")
	p("streams:")
	b.WriteString(strings.Join(h.stats.lines("stream "), "\n") + "\n")
	p("faults injected:")
	b.WriteString(strings.Join(h.stats.lines("faults "), "\n") + "\n")
	p("invariant checks:")
	b.WriteString(strings.Join(h.stats.lines("checks "), "\n") + "\n")
	if n := h.stats.get("drain exits 0"); n > 0 {
		p("  %-48s %d", "drains that exited 0 in time", n)
	}
	p("clients: %d (%d slow readers)", numClients, numSlow)
	b.WriteString(strings.Join(h.stats.lines("clients "), "\n") + "\n")
	entries, topics, holes := h.model.stats()
	p("model: %d change-log entries read, %d topics, %d log holes", entries, topics, holes)
	if len(conv) > 0 {
		p("convergence after the faults stopped (bound %v): %v, slowest %v", convergeBound, rounded(conv), slices.Max(conv).Round(time.Millisecond))
	}
	if n := h.stats.get("model read errors"); n > 0 {
		p("model read errors: %d", n)
	}
	divs := h.div.list()
	if len(divs) == 0 {
		p("divergences: none")
		h.t.Log("\n" + b.String())
		return
	}
	sched := filepath.Join(h.dir, "schedule.log")
	_ = h.journal.save(sched)
	p("\nFAILED: %d kinds of divergence (seed %d; repeat with SOAK_SEED=%d SOAK_TIME=%v make soak)", len(divs), h.seed, h.seed, dur)
	for i, d := range divs {
		p("\n#%d at %.3fs: %s (%d times)\n%s", i+1, d.at.Seconds(), d.category, h.div.n(d.category), d.detail)
	}
	first := divs[0]
	p("\nschedule up to the first divergence (every phase and fault, the last 120 operations):")
	b.WriteString(strings.Join(h.journal.upTo(first.at, 120), "\n") + "\n")
	p("\nwhole schedule: %s; replica logs: %s", sched, filepath.Join(h.dir, "r*.log"))
	h.t.Error("\n" + b.String())
}

func rounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
