package feed_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bbsboard/bbs/pkg/bus"
	"github.com/bbsboard/bbs/pkg/cache"
	"github.com/bbsboard/bbs/pkg/feed"
	"github.com/bbsboard/bbs/pkg/metrics"
	"github.com/bbsboard/bbs/pkg/sse"
	"github.com/bbsboard/bbs/pkg/store"
	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/bbsboard/bbs/pkg/wire"
)

// These tests hold the feed's own clock to its settings: how long an early
// notice waits for the ones before it (GapWait) and how often the version
// is checked (CheckEvery). They run in a synctest bubble on a replica that
// is wholly in-process (SQLite, the in-process bus and cache, as make run
// has it), so time moves only when every goroutine waits, and a timer
// fires at its instant, neither early nor late, however loaded the
// machine.

// localReplica is a feed with everything in-process, and a store of its
// own on the same database, for writes the feed is not told of.
type localReplica struct {
	*replica
	notices *bus.Memory
	silent  *store.Store
}

// startLocal runs a feed on an SQLite file until the bubble's test ends.
// The hub comes from outside the bubble: its fan-out goroutines run for
// the life of the process, which a bubble does not allow.
func startLocal(t *testing.T, hub *sse.Hub, dbPath string, cfg feed.Config) *localReplica {
	t.Helper()
	url := "sqlite:" + dbPath
	r := &localReplica{replica: &replica{store: openStore(t, url), hub: hub, m: metrics.New()}, notices: bus.NewMemory()}
	if _, err := r.store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.silent = openStore(t, url)
	r.feed = feed.New(cfg, slog.New(slog.DiscardHandler), r.store, r.notices, cache.NewMemory(), hub, r.m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.feed.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	synctest.Wait()
	if !r.feed.Ready() {
		t.Fatal("feed not ready once every goroutine waits")
	}
	return r
}

// outsideBubble makes what a bubble must not: a hub, whose fan-out
// goroutines never end, and SQLite's first use (its engine is compiled
// once per process, and kept). It returns the hub and a directory for the
// database.
func outsideBubble(t *testing.T) (*sse.Hub, string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := openStore(t, "sqlite:"+filepath.Join(dir, "warm.db")).Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return sse.NewHub(8), dir
}

// writeSilently commits a topic the feed hears nothing of.
func (r *localReplica) writeSilently(t *testing.T, comment string) topic.Change {
	t.Helper()
	_, hash := topic.NewToken()
	_, changes, err := r.silent.Create(context.Background(), comment, hash)
	if err != nil {
		t.Fatal(err)
	}
	return changes[0]
}

// announce sends c's notice on the bus, as the replica that wrote it does.
func (r *localReplica) announce(t *testing.T, c topic.Change) {
	t.Helper()
	msg, err := json.Marshal(wire.NoticeOf(c))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.notices.Publish(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

// expectAt fails unless, once every goroutine waits, the feed is at
// version v after n catch-ups for reason.
func (r *localReplica) expectAt(t *testing.T, when string, v int64, reason string, n float64) {
	t.Helper()
	synctest.Wait()
	if got := r.feed.Version(); got != v {
		t.Errorf("%s: at version %d, want %d", when, got, v)
	}
	if got := testutilCount(r.replica, reason); got != n {
		t.Errorf("%s: resyncs{reason=%s} = %v, want %v", when, reason, got, n)
	}
}

// TestGapWaitTiming: a notice that arrives ahead of the feed is held for
// exactly GapWait; then the missing versions are read from the log and
// both applied, in order.
func TestGapWaitTiming(t *testing.T) {
	hub, dir := outsideBubble(t)
	synctest.Test(t, func(t *testing.T) {
		const gapWait = 200 * time.Millisecond
		r := startLocal(t, hub, filepath.Join(dir, "bbs.db"), feed.Config{GapWait: gapWait, CheckEvery: time.Hour})
		r.writeSilently(t, "lost")
		r.announce(t, r.writeSilently(t, "announced"))
		r.expectAt(t, "notice of v2 just in", 0, "gap", 0)
		time.Sleep(gapWait - time.Nanosecond)
		r.expectAt(t, "a moment before GapWait", 0, "gap", 0)
		time.Sleep(time.Nanosecond)
		r.expectAt(t, "at GapWait", 2, "gap", 1)
	})
}

// TestCheckEveryTiming: a change no notice announces is found by the
// periodic version check, at its interval and not before.
func TestCheckEveryTiming(t *testing.T) {
	hub, dir := outsideBubble(t)
	synctest.Test(t, func(t *testing.T) {
		const every = 5 * time.Second
		r := startLocal(t, hub, filepath.Join(dir, "bbs.db"), feed.Config{CheckEvery: every})
		r.writeSilently(t, "lost notice")
		time.Sleep(every - time.Nanosecond)
		r.expectAt(t, "a moment before the first check", 0, "check", 0)
		time.Sleep(time.Nanosecond)
		r.expectAt(t, "at the first check", 1, "check", 1)
		r.writeSilently(t, "another")
		time.Sleep(every - time.Nanosecond)
		r.expectAt(t, "a moment before the second check", 1, "check", 1)
		time.Sleep(time.Nanosecond)
		r.expectAt(t, "at the second check", 2, "check", 2)
	})
}
