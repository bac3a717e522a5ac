package feed

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/bbsboard/bbs/pkg/sse"
	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/bbsboard/bbs/pkg/wire"
)

// offer takes a committed change from anywhere (this replica's own write,
// the bus, the change log) and applies it in version order: an old or
// duplicate one is dropped, one that came early waits in pending for those
// before it. If they do not come within GapWait, the run loop reads them
// from the change log.
func (f *Feed) offer(c topic.Change, origin string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offerLocked(c, origin)
}

// Where an offered change came from, for the delivery-lag metric.
const (
	fromWrite = "local" // this replica's own write (Publish)
	fromBus   = "bus"   // another replica's notice
	fromLog   = "log"   // the change log: no commit time, not observed
)

func (f *Feed) offerLocked(c topic.Change, origin string) {
	f.offers++
	if !f.ready || c.Version <= f.version {
		// Before the first load, the load itself plus the catch-up that
		// follows it will bring this change.
		return
	}
	if c.Kind == topic.Reset {
		// The history was rewritten up there: what follows cannot be
		// applied on top of what we hold. The catch-up finds the reset in
		// the log and takes a snapshot.
		f.requestSync("reset")
		return
	}
	if c.Version > f.version+1 {
		if len(f.pending) < f.cfg.Backlog {
			// Beyond that many, the catch-up reads them from the log anyway.
			f.pending[c.Version] = early{c, f.offers, origin}
		}
		f.armGapLocked()
		return
	}
	f.applyLocked(c, origin)
	for {
		next, ok := f.pending[f.version+1]
		if !ok {
			break
		}
		delete(f.pending, next.Version)
		f.applyLocked(next.Change, next.origin)
	}
	if len(f.pending) == 0 && f.gapTimer != nil {
		f.gapTimer.Stop()
		f.gapTimer = nil
	}
}

// armGapLocked starts the wait for missing versions, unless one is running.
func (f *Feed) armGapLocked() {
	if f.gapTimer == nil {
		f.gapTimer = time.AfterFunc(f.cfg.GapWait, func() { f.requestSync("gap") })
	}
}

// settleGapLocked runs after a catch-up: whatever is still pending (the
// log could not be read, say) gets a fresh wait and another catch-up.
func (f *Feed) settleGapLocked() {
	if f.gapTimer != nil {
		f.gapTimer.Stop()
		f.gapTimer = nil
	}
	f.dropAppliedLocked()
	if len(f.pending) > 0 {
		f.armGapLocked()
	}
}

// dropBogusLocked forgets pending changes the database disowns: those
// offered before a read of the log began (offer <= before) with a version
// above the head it found. A change is offered only after its COMMIT, so
// a real one offered before the read is at or below that head; one above
// it was never committed (a garbled or hostile notice), and waiting for it
// would poll the database for ever. Those offered since may be real.
func (f *Feed) dropBogusLocked(head int64, before uint64) {
	for v, e := range f.pending {
		if v > head && e.offer <= before {
			delete(f.pending, v)
		}
	}
}

// dropAppliedLocked forgets pending changes the feed has reached by now.
func (f *Feed) dropAppliedLocked() {
	for v := range f.pending {
		if v <= f.version {
			delete(f.pending, v)
		}
	}
}

// applyLocked applies the change that follows f.version, encodes its SSE
// frame once and hands the same bytes to every stream.
func (f *Feed) applyLocked(c topic.Change, origin string) {
	switch c.Kind {
	case topic.Created:
		i, found := slices.BinarySearchFunc(f.topics, c.Topic.ID, byIDDesc)
		if found {
			f.topics[i] = c.Topic
		} else {
			f.topics = slices.Insert(f.topics, i, c.Topic)
			if len(f.topics) > f.cfg.Limit {
				f.topics = f.topics[:f.cfg.Limit]
			}
		}
	case topic.Updated:
		if i, found := slices.BinarySearchFunc(f.topics, c.Topic.ID, byIDDesc); found {
			f.topics[i] = c.Topic
		}
	case topic.Deleted:
		// Its text must not be replayed again from here: forget the frames
		// that carry it, and every frame encoded from the log (see Attach).
		f.ring.forget(c.ID)
		clear(f.replayed)
		f.deletes++
		if i, found := slices.BinarySearchFunc(f.topics, c.ID, byIDDesc); found {
			f.topics = slices.Delete(f.topics, i, i+1)
		}
		// The topic that slides into the first page, read by the writer at
		// this very version (wire.ApplyEvent is the same rule for clients).
		if c.Fill != nil && len(f.topics) < f.cfg.Limit {
			if i, found := slices.BinarySearchFunc(f.topics, c.Fill.ID, byIDDesc); !found {
				f.topics = slices.Insert(f.topics, i, *c.Fill)
			}
		}
	}
	f.version, f.stamp = c.Version, c.Stamp
	f.snapshot = encoded{}
	frame := encodeChange(c)
	var id, fill int64
	if c.Kind != topic.Deleted {
		id = c.ID
	}
	if c.Fill != nil {
		fill = c.Fill.ID
	}
	f.ring.push(frame, id, fill)
	if c.Committed.IsZero() {
		// Read from the change log: when it committed is not known here,
		// and the catch-up is counted in bbs_resyncs_total instead.
		f.hub.Broadcast(frame)
	} else {
		committed := c.Committed
		lag := f.m.DeliveryLag.WithLabelValues(origin)
		f.hub.BroadcastThen(frame, func() {
			// Clocks of two hosts may disagree by more than the lag itself:
			// a notice from the future counts as no lag, not a negative one.
			lag.Observe(max(time.Since(committed), 0).Seconds())
		})
	}
	f.m.EventsApplied.Inc()
	f.m.Version.Set(float64(f.version))
	f.cond.Broadcast()
}

// replaceLocked swaps the whole window for a snapshot read elsewhere (the
// database or the shared cache), if and only if it is newer: an older
// snapshot never overwrites a newer one. Streams get it as a snapshot
// event, since the changes in between are not known one by one.
func (f *Feed) replaceLocked(page topic.Page) bool {
	if f.ready && page.Version <= f.version {
		return false
	}
	topics := page.Topics
	if len(topics) > f.cfg.Limit {
		topics = topics[:f.cfg.Limit]
	}
	f.topics = slices.Clone(topics)
	f.version, f.stamp = page.Version, page.Stamp
	f.snapshot = encoded{}
	f.ring.reset()
	clear(f.replayed)
	f.dropAppliedLocked()
	f.m.Version.Set(float64(f.version))
	if f.ready {
		f.hub.Broadcast(f.snapshotFrameLocked())
	}
	f.cond.Broadcast()
	return true
}

// encoded is the window at one version as it leaves the process: the body
// of GET /api/topics and of the cache, and the snapshot event.
type encoded struct {
	list  []byte
	frame sse.Frame
}

// snapshotLocked returns the encoded list at f.version, encoding it once
// per version however many streams, reads and cache writes ask for it.
func (f *Feed) snapshotLocked() []byte {
	if f.snapshot.list == nil {
		f.snapshot.list, _ = json.Marshal(wire.List{Version: f.version, Topics: wire.TopicsOf(f.topics), Limit: f.cfg.Limit})
	}
	return f.snapshot.list
}

// snapshotFrameLocked is the snapshot event at f.version, also encoded once
// per version: a burst of thousands of streams connecting (after a replica
// restarts, say) shares one frame instead of each copying the window.
func (f *Feed) snapshotFrameLocked() sse.Frame {
	if f.snapshot.frame.Data == nil {
		f.snapshot.frame = sse.Encode(f.version, "snapshot", f.snapshotLocked())
	}
	return f.snapshot.frame
}

// byIDDesc orders the window newest first.
func byIDDesc(t topic.Topic, id int64) int {
	switch {
	case t.ID > id:
		return -1
	case t.ID < id:
		return 1
	}
	return 0
}

// encodeChange is the SSE frame of a change.
func encodeChange(c topic.Change) sse.Frame {
	data, _ := json.Marshal(wire.EventOf(c)) // plain structs: cannot fail
	return sse.Encode(c.Version, wire.EventName(c.Kind), data)
}
