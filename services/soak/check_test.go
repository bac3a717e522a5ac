package soak

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/bbsboard/bbs/pkg/wire"
)

// observation is one view of the board that claims a version: a client's
// window after a snapshot or an event, or a page some replica served.
type observation struct {
	who     string // client name, or "GET" for a page read
	replica string
	version int64
	topics  []wire.Topic
	limit   int
	before  int64  // pages: ?before=
	via     string // snapshot, topic.created, ..., page
	event   string // for deltas: the event as received
	at      time.Time
}

// checker compares observations with the model once the model has read
// the version they claim. It checks them in order per client, so that a
// divergence is reported where it started: a delta that breaks a view
// that matched is new; a view still wrong after an earlier divergence only
// counts.
type checker struct {
	m     *model
	div   *divergences
	stats *counters

	mu      sync.Mutex
	queue   []observation
	matched map[string]bool // per client: did its last checked view match
}

func newChecker(m *model, div *divergences, stats *counters) *checker {
	return &checker{m: m, div: div, stats: stats, matched: map[string]bool{}}
}

func (c *checker) observe(o observation) {
	o.at = time.Now()
	c.mu.Lock()
	c.queue = append(c.queue, o)
	c.mu.Unlock()
}

// run syncs the model and checks what can be checked, until ctx ends.
func (c *checker) run(ctx context.Context) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := c.m.sync(ctx); err != nil && ctx.Err() == nil {
			c.stats.inc("model read errors")
			continue
		}
		c.drain(ctx)
	}
}

// pending is the number of observations not checked yet.
func (c *checker) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

func (c *checker) drain(ctx context.Context) {
	c.mu.Lock()
	queue := c.queue
	c.queue = nil
	c.mu.Unlock()
	last := c.m.lastRead()
	blocked := map[string]bool{}
	var keep []observation
	for _, o := range queue {
		if blocked[o.who] || o.version > last {
			if o.version > last && time.Since(o.at) > 15*time.Second {
				if db, err := c.m.dbVersion(ctx); err == nil && db < o.version {
					c.div.report("view at a version the database never reached",
						"%s on %s claims version %d via %s; the database is at %d", o.who, o.replica, o.version, o.via, db)
					continue
				}
			}
			if o.who != "GET" {
				blocked[o.who] = true
			}
			keep = append(keep, o)
			continue
		}
		c.check(o)
	}
	if len(keep) > 0 {
		c.mu.Lock()
		c.queue = append(keep, c.queue...)
		c.mu.Unlock()
	}
}

func (c *checker) check(o observation) {
	want, ok := c.m.page(o.version, o.limit, o.before)
	if !ok {
		c.stats.inc("checks skipped (version in a log hole)")
		c.matched[o.who] = true
		return
	}
	if o.who == "GET" {
		c.stats.inc("checks pages (GET /api/topics)")
	} else {
		c.stats.inc("checks client views")
	}
	if diff := diffTopics(want, o.topics); diff == "" {
		c.matched[o.who] = true
		return
	}
	detail := fmt.Sprintf("%s on %s at version %d (limit %d) after %s %s\n%s", o.who, o.replica, o.version, o.limit, o.via, o.event,
		diffTopics(want, o.topics))
	switch {
	case o.who == "GET":
		if o.before > 0 {
			c.div.report("page GET /api/topics?before= differs from the database", "%s", detail)
		} else {
			c.div.report("first page GET /api/topics differs from the database", "%s", detail)
		}
	case o.via == "snapshot":
		c.div.report("snapshot differs from the database", "%s", detail)
	case c.matched[o.who]:
		c.div.report("event "+o.via+" left a view different from the database", "%s", detail)
	default:
		c.stats.inc("checks client views still wrong after an earlier divergence")
	}
	if o.who != "GET" {
		c.matched[o.who] = false
	}
}

// sameTopics is true when got equals want field by field.
func sameTopics(want, got []wire.Topic) bool { return diffTopics(want, got) == "" }

// diffTopics is "" when got equals want, else both lists and the first
// difference.
func diffTopics(want, got []wire.Topic) string {
	first := -1
	for i := 0; i < max(len(want), len(got)); i++ {
		if i >= len(want) || i >= len(got) || !sameTopic(want[i], got[i]) {
			first = i
			break
		}
	}
	if first < 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  database: %s\n  got:      %s\n  first difference at position %d", fmtTopics(want), fmtTopics(got), first)
	if first < len(want) && first < len(got) {
		fmt.Fprintf(&b, ":\n    want %s\n    got  %s", fullTopic(want[first]), fullTopic(got[first]))
	}
	return b.String()
}

func sameTopic(a, b wire.Topic) bool {
	return a.ID == b.ID && a.Comment == b.Comment && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func fmtTopics(ts []wire.Topic) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = fmt.Sprintf("%d:%s", t.ID, short(t.Comment, 14))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func fullTopic(t wire.Topic) string {
	return fmt.Sprintf("{id %d, comment %q, created %s, updated %s}", t.ID, short(t.Comment, 60),
		t.CreatedAt.UTC().Format(time.RFC3339Nano), t.UpdatedAt.UTC().Format(time.RFC3339Nano))
}

// short cuts s to n runes for the report.
func short(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return fmt.Sprintf("%s…(%d)", string(r[:n]), len(r))
}
