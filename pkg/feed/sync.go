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
			if n, err := f.db.Prune(ctx, f.cfg.PruneKeep, f.cfg.PruneAge); err != nil {
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

func (f *Feed) onNotice(msg []byte) {
	var n wire.Notice
	if err := json.Unmarshal(msg, &n); err != nil || n.Version <= 0 {
		f.log.Warn("bad bus notice dropped", "err", err, "len", len(msg))
		return
	}
	f.offer(n.Change())
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
	v, data, err := f.cache.Load(ctx)
	if err != nil {
		f.m.CacheErrors.Inc()
		return topic.Page{}, false
	}
	var list wire.List
	if v == 0 || json.Unmarshal(data, &list) != nil || list.Version != v {
		return topic.Page{}, false
	}
	page := topic.Page{Version: v, Topics: make([]topic.Topic, len(list.Topics))}
	for i, t := range list.Topics {
		page.Topics[i] = t.Domain()
	}
	return page, true
}

// sync brings the feed to the latest committed version: replaying the
// change log when it reaches back far enough (the usual case: a lost
// notice, a resubscribe), else reloading a snapshot from the shared cache
// or, failing that, the database. With the database down it takes a newer
// snapshot from the cache if there is one.
func (f *Feed) sync(ctx context.Context, reason string) {
	if !f.Ready() {
		return // load has not finished; it syncs when it does
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	defer func() {
		f.mu.Lock()
		f.settleGapLocked()
		f.mu.Unlock()
	}()
	from := f.Version()
	changes, err := f.db.ChangesSince(ctx, from, catchUpMax)
	if err != nil {
		if page, ok := f.cachedPage(ctx); ok {
			f.mu.Lock()
			replaced := f.replaceLocked(page)
			f.mu.Unlock()
			if replaced {
				f.m.Resyncs.WithLabelValues(reason + "/cache").Inc()
			}
		}
		f.log.Warn("catch up: change log unreadable", "reason", reason, "err", err)
		return
	}
	if len(changes) == 0 {
		return
	}
	if changes[0].Version == from+1 && len(changes) < catchUpMax {
		f.mu.Lock()
		for _, c := range changes {
			f.offerLocked(c)
		}
		f.mu.Unlock()
		f.m.Resyncs.WithLabelValues(reason).Inc()
		return
	}
	// Too far behind, or the log was pruned past us: take a whole snapshot,
	// from the cache if it is new enough, so replicas don't all hit Postgres.
	page, ok := f.cachedPage(ctx)
	if !ok || page.Version < changes[len(changes)-1].Version {
		if page, err = f.db.Page(ctx, 0, f.cfg.Limit); err != nil {
			f.log.Warn("catch up: reload", "reason", reason, "err", err)
			return
		}
	}
	f.mu.Lock()
	f.replaceLocked(page)
	f.mu.Unlock()
	f.storeCache(ctx)
	f.m.Resyncs.WithLabelValues(reason + "/snapshot").Inc()
}

// check compares the feed's version with the database's (the shared
// cache's when the database is down): a notice lost without any
// disconnect, or a write whose replica died between COMMIT and PUBLISH,
// shows up here within CheckEvery.
func (f *Feed) check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	latest, err := f.db.Version(ctx)
	if err != nil {
		if latest, err = f.cache.Version(ctx); err != nil {
			return
		}
	}
	f.mu.Lock()
	behind := f.ready && latest > f.version
	f.mu.Unlock()
	if behind {
		f.requestSync("check")
	}
}
