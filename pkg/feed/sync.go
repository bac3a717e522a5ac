package feed

import (
	"context"
	"time"

	"github.com/bbsboard/bbs/pkg/topic"
)

// sync brings the feed to the database's state. The database is the truth:
// the feed never takes itself to be current without the database agreeing
// on both the version and the stamp of the change that made it.
//
//   - Same history, behind: replay the change log when it reaches back to
//     the feed's version and up to the head (the usual case: a lost
//     notice, a resubscribe); else take a snapshot.
//   - A different history (the database restored to an earlier point, or
//     a standby that lost commits): unless somebody already started a new
//     history above us, start one (Rebase), so no version we or our
//     clients hold can be mistaken for one of the new history.
//
// With the database down it takes a newer snapshot from the shared cache
// if there is one.
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
	f.mu.Lock()
	from, stamp, offers := f.version, f.stamp, f.offers
	f.mu.Unlock()
	h, err := f.db.ChangesSince(ctx, from, catchUpMax)
	if err != nil {
		if page, ok := f.cachedPage(ctx); ok {
			f.mu.Lock()
			replaced := f.replaceLocked(page)
			f.mu.Unlock()
			if replaced {
				f.m.Resyncs.WithLabelValues(reason + "/cache").Inc()
				f.m.SnapshotLoads.WithLabelValues(reason, "cache").Inc()
			}
		}
		f.log.Warn("catch up: change log unreadable", "reason", reason, "err", err)
		return
	}
	f.mu.Lock()
	f.dropBogusLocked(h.Head, offers)
	f.mu.Unlock()

	rewound := crossesReset(h.Changes)
	switch {
	case diverged(h, from, stamp) && !rewound:
		f.rebase(ctx, reason, from, h)
	case h.Head == from:
		// Current: the database agrees on the version and on its stamp, or
		// we did not know our stamp (a snapshot cached before stamps
		// existed): now we do.
		if stamp == 0 {
			f.mu.Lock()
			if f.version == from && f.stamp == 0 {
				f.stamp = h.HeadStamp
				if h.AtFound {
					f.stamp = h.At
				}
			}
			f.mu.Unlock()
		}
	case !rewound && replayable(h, from):
		// Counted before the version moves, so whoever sees it moved sees
		// the count too.
		f.m.Resyncs.WithLabelValues(reason).Inc()
		f.mu.Lock()
		// The log's entries win over notices that claim the same versions.
		for v := range f.pending {
			if v <= h.Head {
				delete(f.pending, v)
			}
		}
		for _, c := range h.Changes {
			f.offerLocked(c, fromLog)
		}
		f.mu.Unlock()
	default:
		f.snapshotFrom(ctx, reason, h)
	}
}

// diverged reports that the database's history is not the one the feed
// applied up to from: it is behind from, or the change it holds at from
// (or at its head, when that is from) has another stamp. A pruned entry at
// from, or a stamp of 0 (unknown), proves nothing either way.
func diverged(h topic.History, from, stamp int64) bool {
	switch {
	case h.Head < from:
		return true
	case from == 0 || stamp == 0:
		// Nothing to compare: the empty board, or a stamp we do not know
		// (a snapshot cached, or changes logged, before stamps existed).
		return false
	case h.AtFound:
		return h.At != stamp
	case h.Head == from:
		return h.HeadStamp != stamp
	}
	return false
}

// replayable: the log continues the feed's own history (its entry at from
// is there and agrees, or from is the empty board) without a hole, up to
// the head, and holds every text it needs.
func replayable(h topic.History, from int64) bool {
	n := len(h.Changes)
	if !(from == 0 || h.AtFound) || n == 0 || h.Changes[0].Version != from+1 || h.Changes[n-1].Version != h.Head {
		return false
	}
	for _, c := range h.Changes {
		if c.Redacted {
			return false // the text of a topic deleted since: only a snapshot has the board
		}
	}
	return true
}

// crossesReset reports a new history started among the changes.
func crossesReset(changes []topic.Change) bool {
	for _, c := range changes {
		if c.Kind == topic.Reset {
			return true
		}
	}
	return false
}

// snapshotFrom replaces the window with the board at the database's head:
// from the shared cache when it holds exactly that version of the same
// history (so replicas don't all hit Postgres), else from the database.
func (f *Feed) snapshotFrom(ctx context.Context, reason string, h topic.History) {
	page, ok := f.cachedPage(ctx)
	source := "cache"
	if !ok || page.Version != h.Head || page.Stamp != h.HeadStamp {
		var err error
		if page, err = f.db.Page(ctx, 0, f.cfg.Limit); err != nil {
			f.log.Warn("catch up: reload", "reason", reason, "err", err)
			return
		}
		source = "database"
	}
	f.m.Resyncs.WithLabelValues(reason + "/snapshot").Inc()
	f.m.SnapshotLoads.WithLabelValues(reason, source).Inc()
	f.mu.Lock()
	f.replaceLocked(page)
	f.mu.Unlock()
	f.storeCache(ctx)
}

// rebase starts a new history above everything this replica and the shared
// cache have seen, adopts the database's board at it, and tells the other
// replicas (they find the reset in the log and take a snapshot).
func (f *Feed) rebase(ctx context.Context, reason string, from int64, h topic.History) {
	floor := from
	if cv, err := f.cache.Version(ctx); err == nil {
		floor = max(floor, cv)
	}
	page, c, err := f.db.Rebase(ctx, floor, f.cfg.Limit)
	if err != nil {
		f.log.Warn("database history differs from this replica's; new history not started", "reason", reason, "err", err)
		return
	}
	f.log.Warn("database history differs from this replica's: adopted the database's board in a new history",
		"reason", reason, "replica_version", from, "database_version", h.Head, "new_version", page.Version)
	f.m.Resyncs.WithLabelValues(reason + "/rebase").Inc()
	f.m.SnapshotLoads.WithLabelValues(reason+"/rebase", "database").Inc()
	f.mu.Lock()
	f.replaceLocked(page)
	f.mu.Unlock()
	f.storeCache(ctx)
	select {
	case f.pubQ <- c:
	default:
		f.m.PublishErrors.Inc()
	}
}

// check compares the feed's version and stamp with the database's head
// (with the shared cache's version when the database is down): a notice
// lost without any disconnect, a write whose replica died between COMMIT
// and PUBLISH, or a database that went back in time shows up here within
// CheckEvery.
func (f *Feed) check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	latest, stamp, err := f.db.Head(ctx)
	if err != nil {
		if latest, err = f.cache.Version(ctx); err != nil {
			return
		}
		f.mu.Lock()
		behind := f.ready && latest > f.version
		f.mu.Unlock()
		if behind {
			f.requestSync("check")
		}
		return
	}
	f.mu.Lock()
	off := f.ready && (latest != f.version || stamp != f.stamp)
	behind := max(latest-f.version, 0)
	f.mu.Unlock()
	f.m.DatabaseVersion.Set(float64(latest))
	f.m.VersionBehind.Set(float64(behind))
	if off {
		f.requestSync("check")
		return
	}
	// Current with the database. The shared cache may not be: the store
	// after the last write can have failed (Redis cut off just then), and
	// no later write comes to redo it.
	if cv, err := f.cache.Version(ctx); err == nil && cv < latest {
		f.storeCache(ctx)
	}
}
