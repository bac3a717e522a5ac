package soak

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// journal is the schedule as it happened: every operation, fault and
// phase with its time since the start, for the report of a failure.
type journal struct {
	start   time.Time
	mu      sync.Mutex
	entries []entry
}

type entry struct {
	at   time.Duration
	kind string // phase, fault, op, client
	text string
}

func (j *journal) since() time.Duration { return time.Since(j.start) }

func (j *journal) add(kind, format string, args ...any) {
	e := entry{at: j.since(), kind: kind, text: fmt.Sprintf(format, args...)}
	j.mu.Lock()
	j.entries = append(j.entries, e)
	j.mu.Unlock()
}

func (e entry) String() string {
	return fmt.Sprintf("%9.3fs %-6s %s", e.at.Seconds(), e.kind, e.text)
}

// upTo is the schedule up to at: every phase and fault, and the last
// lastOps operations and client actions before it.
func (j *journal) upTo(at time.Duration, lastOps int) []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	n := 0
	for i := len(j.entries) - 1; i >= 0; i-- {
		e := j.entries[i]
		if e.at > at {
			continue
		}
		if e.kind == "op" || e.kind == "client" {
			if n >= lastOps {
				continue
			}
			n++
		}
		out = append(out, e.String())
	}
	slices.Reverse(out)
	return out
}

// save writes the whole schedule to path.
func (j *journal) save(path string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var b strings.Builder
	for _, e := range j.entries {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// counters counts by name; the report prints them grouped by the part of
// the name before the first space.
type counters struct {
	mu sync.Mutex
	m  map[string]int64
}

func (c *counters) add(name string, n int64) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[name] += n
	c.mu.Unlock()
}

func (c *counters) inc(name string) { c.add(name, 1) }

func (c *counters) get(name string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[name]
}

func (c *counters) lines(prefix string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, k := range slices.Sorted(maps.Keys(c.m)) {
		if strings.HasPrefix(k, prefix) {
			out = append(out, fmt.Sprintf("  %-48s %d", strings.TrimPrefix(k, prefix), c.m[k]))
		}
	}
	return out
}

// divergence is a broken invariant: what, when and the evidence.
type divergence struct {
	at       time.Duration
	category string
	detail   string
}

// divergences keeps the first of each category and counts the rest, so a
// run that breaks one invariant still reports the others it found.
type divergences struct {
	j     *journal
	mu    sync.Mutex
	first map[string]divergence
	count map[string]int
	order []string
}

func (d *divergences) report(category, format string, args ...any) {
	dv := divergence{at: d.j.since(), category: category, detail: fmt.Sprintf(format, args...)}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.first == nil {
		d.first, d.count = map[string]divergence{}, map[string]int{}
	}
	if _, ok := d.first[category]; !ok {
		d.first[category] = dv
		d.order = append(d.order, category)
		d.j.add("FAIL", "%s: %s", category, firstLine(dv.detail))
	}
	d.count[category]++
}

func (d *divergences) list() []divergence {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]divergence, 0, len(d.order))
	for _, c := range d.order {
		out = append(out, d.first[c])
	}
	return out
}

func (d *divergences) n(category string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count[category]
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
