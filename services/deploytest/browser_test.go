package deploytest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/bbsboard/bbs/pkg/sse"
	"github.com/bbsboard/bbs/pkg/wire"
)

// browser follows the stream as an EventSource does: it reconnects after
// the last retry: it was sent, with Last-Event-ID, and applies the snapshot
// and the events to its own copy of the board.
type browser struct {
	base string // the load balancer

	mu       sync.Mutex
	version  int64
	topics   []wire.Topic
	limit    int
	lastID   string
	retry    time.Duration
	problems []string
	stats    browserStats
}

type browserStats struct {
	Connects  int         // streams opened (200)
	Snapshots int         // snapshots received
	Resumed   int         // reconnects answered with events, no snapshot
	Refused   map[int]int // non-200 answers to a connect, by status
	Errors    int         // connects that failed outright
}

func newBrowser(base string) *browser {
	return &browser{base: base, retry: time.Second, stats: browserStats{Refused: map[int]int{}}}
}

// run follows the stream until ctx ends.
func (b *browser) run(ctx context.Context, client *http.Client) {
	for ctx.Err() == nil {
		b.follow(ctx, client)
		b.mu.Lock()
		wait := b.retry
		b.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// follow is one connection: open, read events until the stream ends.
func (b *browser) follow(ctx context.Context, client *http.Client) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.base+"/api/topics/stream", nil)
	b.mu.Lock()
	resuming := b.lastID != ""
	if resuming {
		req.Header.Set("Last-Event-ID", b.lastID)
	}
	b.mu.Unlock()
	resp, err := client.Do(req)
	if err != nil {
		b.count(func(s *browserStats) { s.Errors++ })
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.count(func(s *browserStats) { s.Refused[resp.StatusCode]++ })
		return
	}
	b.count(func(s *browserStats) { s.Connects++ })
	r := sse.NewReader(resp.Body)
	first := true
	for {
		ev, err := r.Next()
		if err != nil {
			return
		}
		if first && resuming && ev.Name != "snapshot" && ev.Name != "message" {
			b.count(func(s *browserStats) { s.Resumed++ })
		}
		if ev.Name != "message" {
			first = false
		}
		b.apply(ev)
	}
}

func (b *browser) count(f func(*browserStats)) {
	b.mu.Lock()
	f(&b.stats)
	b.mu.Unlock()
}

func (b *browser) problem(format string, args ...any) {
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

func (b *browser) apply(ev sse.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ev.Retry >= 0 {
		b.retry = time.Duration(ev.Retry) * time.Millisecond
	}
	if ev.ID != "" {
		b.lastID = ev.ID
	}
	switch ev.Name {
	case "message": // a retry: frame
	case "snapshot":
		var l wire.List
		if err := json.Unmarshal([]byte(ev.Data), &l); err != nil {
			b.problem("bad snapshot: %v", err)
			return
		}
		if l.Version < b.version {
			b.problem("snapshot at %d replaced a newer view at %d", l.Version, b.version)
		}
		b.version, b.topics, b.limit = l.Version, l.Topics, l.Limit
		b.stats.Snapshots++
	case "topic.created", "topic.updated", "topic.deleted":
		var e wire.Event
		if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
			b.problem("bad %s: %v", ev.Name, err)
			return
		}
		if e.Version != b.version+1 {
			b.problem("%s at version %d applied after %d: a gap or a repeat", ev.Name, e.Version, b.version)
		}
		b.version = e.Version
		b.topics = wire.ApplyEvent(b.topics, ev.Name, e, b.limit)
	default:
		b.problem("unknown event %q", ev.Name)
	}
}

// view is what the browser shows, as GET /api/topics would answer.
func (b *browser) view() wire.List {
	b.mu.Lock()
	defer b.mu.Unlock()
	return wire.List{Version: b.version, Topics: append([]wire.Topic{}, b.topics...)}
}
