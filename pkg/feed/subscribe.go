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
func (f *Feed) Attach(ctx context.Context, st *sse.Stream, lastID int64, resume bool, first ...sse.Frame) error {
	if resume && lastID > f.Version() {
		// The client saw a version on another replica that this one has not
		// applied yet; wait briefly rather than hand it an older snapshot.
		f.requestSync("client ahead")
		f.waitFor(ctx, lastID, aheadWait)
	}
	var logged []topic.Change
	if resume && lastID < f.Version() {
		if _, ok := f.fromRing(lastID); !ok {
			// Older than memory reaches: the change log may still have it.
			if h, err := f.db.ChangesSince(ctx, lastID, catchUpMax); err == nil {
				logged = h.Changes
			}
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ready {
		return ErrNotReady
	}
	return f.hub.Attach(st, f.version, append(first, f.firstFramesLocked(lastID, resume, logged)...))
}

func (f *Feed) firstFramesLocked(lastID int64, resume bool, logged []topic.Change) []sse.Frame {
	if resume && lastID == f.version {
		return nil
	}
	if resume && lastID < f.version {
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
// over (or the feed's version), if together they leave no hole.
func (f *Feed) replayLocked(lastID int64, logged []topic.Change) ([]sse.Frame, bool) {
	var frames []sse.Frame
	next := lastID + 1
	for _, c := range logged {
		if c.Version > f.version {
			break
		}
		if c.Version != next || c.Kind == topic.Reset {
			// A hole, or a new history started after lastID: lastID may
			// name a change the database no longer has.
			return nil, false
		}
		frames = append(frames, encodeChange(c))
		next++
		if rest, ok := f.ring.since(c.Version); ok {
			return append(frames, rest...), true
		}
	}
	return frames, next == f.version+1
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
