package feed

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/bbsboard/bbs/pkg/sse"
	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/bbsboard/bbs/pkg/wire"
)

// Run loads the board, subscribes to the bus and keeps the feed current
// until ctx ends. It returns only then.
func (f *Feed) Run(ctx context.Context) {
	go f.subscribe(ctx)
	go f.publisher(ctx)
	f.load(ctx)

	check := time.NewTicker(f.cfg.CheckEvery)
	defer check.Stop()
	heartbeat := time.NewTicker(f.cfg.Heartbeat)
	defer heartbeat.Stop()
	prune := time.NewTicker(f.cfg.PruneEvery)
	defer prune.Stop()
	beat := sse.Comment("heartbeat")
	for {
		select {
		case <-ctx.Done():
			return
		case reason := <-f.syncReq:
			f.sync(ctx, reason)
		case <-check.C:
			f.check(ctx)
		case <-heartbeat.C:
			f.hub.Broadcast(beat)
		case <-prune.C:
			if n, err := f.db.Prune(ctx, f.cfg.PruneKeep, f.cfg.PruneAge, f.pruneFloor(ctx)); err != nil {
				f.log.Warn("prune change log", "err", err)
			} else if n > 0 {
				f.log.Info("pruned change log", "entries", n)
			}
		}
	}
}

// subscribe keeps the bus subscription up; every (re)subscription may have
// lost notices, so each one triggers a catch-up.
func (f *Feed) subscribe(ctx context.Context) {
	for ctx.Err() == nil {
		err := f.bus.Subscribe(ctx, f.onNotice, func() { f.requestSync("resubscribed") })
		if err != nil && ctx.Err() == nil {
			f.log.Warn("bus subscription ended", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// onNotice offers a notice from the bus. A notice that is malformed, or
// that claims a version further ahead than any backlog we keep, is not
// applied: it is only a reason to read the database.
//
// A notice for a version this replica already holds is dropped before it
// is decoded (offerLocked would drop it after): that is every replica's
// own notices, a third of what each hears in a cluster of three.
func (f *Feed) onNotice(msg []byte) {
	if v, ok := wire.PeekVersion(msg); ok {
		f.mu.Lock()
		known := !f.ready || v <= f.version
		f.mu.Unlock()
		if known {
			return
		}
	}
	var n wire.Notice
	err := json.Unmarshal(msg, &n)
	if err == nil {
		err = n.Validate()
	}
	if err != nil {
		f.log.Warn("bad bus notice dropped", "err", err, "len", len(msg))
		f.requestSync("bad notice")
		return
	}
	if n.Version > f.Version()+int64(f.cfg.Backlog) {
		f.requestSync("notice far ahead")
		return
	}
	f.offer(n.Domain(), fromBus)
}

// pruneFloor is the oldest change-log entry this replica knows to be
// needed: its own version (to check its history against the database's)
// and the shared cache's (for replicas that start from it).
func (f *Feed) pruneFloor(ctx context.Context) int64 {
	floor := f.Version()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if cv, err := f.cache.Version(ctx); err == nil && cv > 0 {
		floor = min(floor, cv)
	}
	return floor
}

// load reads the first snapshot, from the shared cache when it has one
// (no database read, and no herd of replicas starting at once on Postgres),
// else from the database, retrying until one answers. The catch-up that
// follows brings it to the latest version.
func (f *Feed) load(ctx context.Context) {
	for backoff := 100 * time.Millisecond; ctx.Err() == nil; backoff = min(backoff*2, 5*time.Second) {
		page, source, err := f.firstPage(ctx)
		if err == nil {
			f.mu.Lock()
			f.replaceLocked(page)
			f.ready = true
			f.mu.Unlock()
			f.m.SnapshotLoads.WithLabelValues("start", source).Inc()
			f.log.Info("board loaded", "version", page.Version, "topics", len(page.Topics), "from", source)
			if source == "database" {
				f.storeCache(ctx)
			}
			f.sync(ctx, "start")
			return
		}
		f.log.Warn("load board", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
	}
}

func (f *Feed) firstPage(ctx context.Context) (topic.Page, string, error) {
	if page, ok := f.cachedPage(ctx); ok {
		return page, "cache", nil
	}
	page, err := f.db.Page(ctx, 0, f.cfg.Limit)
	if err != nil {
		return topic.Page{}, "", fmt.Errorf("cache empty or down, and database: %w", err)
	}
	return page, "database", nil
}

// cachedPage decodes the shared snapshot, if there is one.
func (f *Feed) cachedPage(ctx context.Context) (topic.Page, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	v, stamp, data, err := f.cache.Load(ctx)
	if err != nil {
		f.m.CacheErrors.Inc()
		return topic.Page{}, false
	}
	var list wire.List
	if v == 0 || json.Unmarshal(data, &list) != nil || list.Version != v {
		return topic.Page{}, false
	}
	page := topic.Page{Version: v, Stamp: stamp, Topics: make([]topic.Topic, len(list.Topics))}
	for i, t := range list.Topics {
		page.Topics[i] = t.Domain()
	}
	return page, true
}
