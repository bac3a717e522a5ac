// Package feed keeps one replica's view of the board in step with the
// cluster: it applies committed changes in version order to an in-memory
// window of the newest topics, encodes each change once as an SSE frame and
// hands it to every stream, detects what the at-most-once bus lost, and
// fetches it from the change log, the shared cache or the database.
package feed

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/bbsboard/bbs/pkg/metrics"
	"github.com/bbsboard/bbs/pkg/sse"
	"github.com/bbsboard/bbs/pkg/topic"
)

// Log is what the feed reads from the database: the change log, pages of
// topics and the head (latest version and its stamp); and where it starts
// a new history when the database went back in time. Postgres and SQLite
// both provide it.
type Log interface {
	Page(ctx context.Context, before int64, limit int) (topic.Page, error)
	ChangesSince(ctx context.Context, version int64, max int) (topic.History, error)
	Head(ctx context.Context) (version, stamp int64, err error)
	Prune(ctx context.Context, keep int64, maxAge time.Duration, floor int64) (int64, error)
	Rebase(ctx context.Context, floor int64, limit int) (topic.Page, topic.Change, error)
}

// Bus carries change notices between replicas, at most once (Redis pub/sub
// or in-process).
type Bus interface {
	Publish(ctx context.Context, msgs ...[]byte) error
	Subscribe(ctx context.Context, handle func(msg []byte), resubscribed func()) error
}

// Cache holds the shared snapshot with its version and the stamp of the
// change that made it, never replacing a newer one with an older one
// (Redis or in-process).
type Cache interface {
	Load(ctx context.Context) (version, stamp int64, data []byte, err error)
	Store(ctx context.Context, version, stamp int64, data []byte) (stored bool, err error)
	Version(ctx context.Context) (int64, error)
}

// Config tunes a feed; zero fields take the defaults.
type Config struct {
	Limit      int           // topics in the window (SNAPSHOT_LIMIT), default 100
	Backlog    int           // recent frames kept for exact resumes, default 4096
	GapWait    time.Duration // how long a notice that arrived early waits for the ones before it, default 200ms
	CheckEvery time.Duration // periodic version check, default 5s
	Heartbeat  time.Duration // SSE heartbeat comment interval, default 15s
	PruneEvery time.Duration // change-log pruning, default 1m
	PruneKeep  int64         // change-log entries always kept, default 100000
	PruneAge   time.Duration // change-log entries older than this may go, default 24h
}

func (c *Config) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Limit <= 0 {
		c.Limit = 100
	}
	if c.Backlog <= 0 {
		c.Backlog = 4096
	}
	if c.PruneKeep <= 0 {
		c.PruneKeep = 100000
	}
	set(&c.GapWait, 200*time.Millisecond)
	set(&c.CheckEvery, 5*time.Second)
	set(&c.Heartbeat, 15*time.Second)
	set(&c.PruneEvery, time.Minute)
	set(&c.PruneAge, 24*time.Hour)
}

// catchUpMax bounds one read of the change log; a replica further behind
// reloads a snapshot instead of replaying.
const catchUpMax = 1000

// Feed is one replica's live view of the board.
type Feed struct {
	cfg   Config
	log   *slog.Logger
	db    Log
	bus   Bus
	cache Cache
	hub   *sse.Hub
	m     *metrics.Metrics

	mu       sync.Mutex
	cond     *sync.Cond // signalled whenever version moves
	ready    bool
	version  int64
	stamp    int64           // of the change that made version: which history we are on
	topics   []topic.Topic   // newest first, at most cfg.Limit
	pending  map[int64]early // changes that came before those they follow
	offers   uint64          // changes offered so far: orders pending against reads of the log
	ring     ring
	replayed map[int64]sse.Frame // frames encoded from the change log for resumes, shared
	deletes  uint64              // deletes applied so far: a log read older than one is not replayed
	snapshot encoded             // the window at version, encoded once; zero when stale
	gapTimer *time.Timer

	syncReq chan string
	pubQ    chan topic.Change
}

// New returns a feed; Run starts it.
func New(cfg Config, log *slog.Logger, db Log, bus Bus, cache Cache, hub *sse.Hub, m *metrics.Metrics) *Feed {
	cfg.defaults()
	f := &Feed{
		cfg: cfg, log: log, db: db, bus: bus, cache: cache, hub: hub, m: m,
		pending:  map[int64]early{},
		ring:     newRing(cfg.Backlog),
		replayed: map[int64]sse.Frame{},
		syncReq:  make(chan string, 1),
		pubQ:     make(chan topic.Change, 4096),
	}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// early is a change that arrived before the ones it follows, with the
// number of the offer that brought it and where it came from.
type early struct {
	topic.Change
	offer  uint64
	origin string
}

// Limit is the window size.
func (f *Feed) Limit() int { return f.cfg.Limit }

// Heartbeat is how often an idle stream gets a heartbeat comment.
func (f *Feed) Heartbeat() time.Duration { return f.cfg.Heartbeat }

// Ready reports whether the feed has loaded the board and may serve.
func (f *Feed) Ready() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

// Version is the version the replica's list is at.
func (f *Feed) Version() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.version
}

// requestSync asks the run loop to catch up; requests coalesce.
func (f *Feed) requestSync(reason string) {
	select {
	case f.syncReq <- reason:
	default:
	}
}
