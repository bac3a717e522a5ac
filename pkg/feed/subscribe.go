package feed

import (
	"context"
	"errors"
	"time"

	"github.com/bbsboard/bbs/pkg/sse"
	"github.com/bbsboard/bbs/pkg/topic"
)

// ErrNotReady is returned while the feed has not loaded the board yet.
var ErrNotReady = errors.New("feed not ready")

// aheadWait bounds how long a stream that resumes from a version this
// replica has not reached yet waits for the replica to catch up.
const aheadWait = 2 * time.Second

// Attach starts a stream: first (its response head, say), then the frames
// it must see before the live ones. Without resume that is a snapshot.
// With resume (Last-Event-ID: lastID) it is exactly the frames after
// lastID, from memory or the change log, or a snapshot when those cannot
// be known for sure. The stream is attached under the same lock that
// orders broadcasts, so nothing falls between its first frames and the
// live ones. A stream that overflowed is attached again the same way.
//
// What a resume may cost is bounded whoever asks: a replay longer than a
// stream's queue is a snapshot instead (it would overflow anyway); the
// change log is read, at most a queue's worth of entries, before the lock
// is taken; and every frame is encoded once per replica and shared by
// every stream that replays it (the ring, the replay cache, the snapshot).
func (f *Feed) Attach(ctx context.Context, st *sse.Stream, lastID int64, resume bool, first ...sse.Frame) error {
	lagging := false
	if resume && lastID > f.Version() {
		// The client saw a version on another replica that this one has not
		// applied yet; wait briefly rather than hand it an older snapshot.
		f.requestSync("client ahead")
		f.waitFor(ctx, lastID, aheadWait)
		if lastID > f.Version() {
			// Still behind. If the database has lastID, the client is right
			// and we are late: attach it at lastID, and it gets what follows
			// as we catch up. So too when the database cannot be asked (that
			// is usually why we are late): a snapshot older than what the
			// client shows would take its board back in time. Only an id the
			// database denies (from another database, or a history since
			// rewound) gets our snapshot.
			head, _, err := f.db.Head(ctx)
			lagging = err != nil || head >= lastID
		}
	}
	var logged []topic.Change
	f.mu.Lock()
	deletes := f.deletes
	f.mu.Unlock()
	if resume && lastID < f.Version() && f.Version()-lastID <= int64(f.maxReplay()) {
		if _, ok := f.fromRing(lastID); !ok {
			// Older than memory reaches: the change log may still have it.
			if h, err := f.db.ChangesSince(ctx, lastID, f.maxReplay()); err == nil {
				logged = h.Changes
			}
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ready {
		return ErrNotReady
	}
	if lagging && lastID > f.version {
		// The hub skips every frame up to lastID: the client has those.
		return f.hub.Attach(st, lastID, first)
	}
	if f.deletes != deletes {
		// A topic was deleted since the log was read: what was read may
		// carry its text (the delete scrubs the log, but after our read).
		logged = nil
	}
	return f.hub.Attach(st, f.version, append(first, f.firstFramesLocked(lastID, resume, logged)...))
}

// maxReplay is the longest replay a stream is given: its queue.
func (f *Feed) maxReplay() int { return f.hub.Queue() }

func (f *Feed) firstFramesLocked(lastID int64, resume bool, logged []topic.Change) []sse.Frame {
	if resume && lastID == f.version {
		return nil
	}
	if resume && lastID < f.version && f.version-lastID <= int64(f.maxReplay()) {
		if frames, ok := f.ring.since(lastID); ok {
			return frames
		}
		if frames, ok := f.replayLocked(lastID, logged); ok {
			return frames
		}
	}
	return []sse.Frame{f.snapshotFrameLocked()}
}

func (f *Feed) fromRing(lastID int64) ([]sse.Frame, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ring.since(lastID)
}

// replayLocked encodes logged changes lastID+1.. up to where the ring takes
// over (or the feed's version), if together they leave no hole. Each
// change is encoded once per replica: the frames stay in f.replayed, shared
// by every stream that replays them, until the window is replaced.
func (f *Feed) replayLocked(lastID int64, logged []topic.Change) ([]sse.Frame, bool) {
	var frames []sse.Frame
	next := lastID + 1
	for _, c := range logged {
		if c.Version > f.version {
			break
		}
		if c.Version != next || c.Kind == topic.Reset || c.Redacted {
			// A hole, a new history started after lastID (lastID may name a
			// change the database no longer has), or the text of a topic
			// deleted since: none of these can be replayed.
			return nil, false
		}
		frames = append(frames, f.replayFrameLocked(c))
		next++
		if rest, ok := f.ring.since(c.Version); ok {
			return append(frames, rest...), true
		}
	}
	return frames, next == f.version+1
}

// replayFrameLocked is the shared frame of a logged change.
func (f *Feed) replayFrameLocked(c topic.Change) sse.Frame {
	if fr, ok := f.replayed[c.Version]; ok {
		return fr
	}
	if len(f.replayed) >= 4*f.maxReplay() {
		clear(f.replayed) // bounded: a few queues' worth of frames
	}
	fr := encodeChange(c)
	f.replayed[c.Version] = fr
	return fr
}

// waitFor blocks until the feed reaches version, ctx ends or d passes.
func (f *Feed) waitFor(ctx context.Context, version int64, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		f.mu.Lock()
		f.cond.Broadcast()
		f.mu.Unlock()
	})
	defer stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.version < version && ctx.Err() == nil {
		f.cond.Wait()
	}
}

// List returns the encoded window (the body of GET /api/topics) when the
// feed is ready; limit below the window's size trims it.
func (f *Feed) List(limit int) (page topic.Page, encoded []byte, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ready {
		return topic.Page{}, nil, false
	}
	if limit >= f.cfg.Limit {
		return topic.Page{}, f.snapshotLocked(), true
	}
	return topic.Page{Version: f.version, Topics: append([]topic.Topic(nil), f.topics[:min(limit, len(f.topics))]...)}, nil, true
}
