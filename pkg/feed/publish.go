package feed

import (
	"context"
	"encoding/json"
	"time"

	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/bbsboard/bbs/pkg/wire"
)

// Publish takes changes that have COMMITTED on this replica. It applies them
// here at once, so this replica's streams see them even with the bus down,
// and queues them for the bus. It never blocks the write that made them:
// if the queue is full the notice is dropped and the other replicas find
// the change through their periodic check.
//
// Changes without a commit time are stamped now: the caller hands them
// over as soon as COMMIT returned, and the stamp travels with the bus
// notice so every replica can measure its delivery lag from it.
func (f *Feed) Publish(changes []topic.Change) {
	now := time.Now()
	for _, c := range changes {
		if c.Committed.IsZero() {
			c.Committed = now
		}
		f.mu.Lock()
		had := f.ready && c.Version <= f.version
		f.offerLocked(c, fromWrite)
		behind := f.ready && f.version < c.Version
		f.mu.Unlock()
		switch {
		case behind:
			// Our own change waits behind versions we have not seen. They
			// committed before ours, so the log has them now: fetch them at
			// once rather than after the gap wait, so the writer's streams
			// show the write it just acknowledged.
			f.requestSync("own write")
		case had:
			// The database handed out a version we already hold: it went
			// back in time (a restore, a failover), or a catch-up was just
			// faster than us. The catch-up tells the two apart.
			f.requestSync("own write known")
		}
		select {
		case f.pubQ <- c:
		default:
			f.m.PublishErrors.Inc()
		}
	}
}

// publisher sends queued notices on the bus, all that are waiting in one
// go, then writes this replica's snapshot to the shared cache (so a burst
// of writes costs one bus round trip and one cache write, not one each).
func (f *Feed) publisher(ctx context.Context) {
	var burst []topic.Change
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-f.pubQ:
			burst = append(burst[:0], c)
		}
		for more := true; more && len(burst) < maxBurst; {
			select {
			case c := <-f.pubQ:
				burst = append(burst, c)
			default:
				more = false
			}
		}
		f.publish(ctx, burst)
		f.storeCache(ctx)
	}
}

// maxBurst bounds the notices sent in one round trip.
const maxBurst = 512

func (f *Feed) publish(ctx context.Context, cs []topic.Change) {
	msgs := make([][]byte, len(cs))
	for i, c := range cs {
		msgs[i], _ = json.Marshal(wire.NoticeOf(c))
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := f.bus.Publish(ctx, msgs...); err != nil {
		f.m.PublishErrors.Add(float64(len(cs)))
		return
	}
	f.m.EventsPublished.Add(float64(len(cs)))
}

// storeCache writes the feed's current snapshot to the shared cache; the
// cache keeps it only if it holds nothing as new.
func (f *Feed) storeCache(ctx context.Context) {
	f.mu.Lock()
	v, stamp, data := f.version, f.stamp, f.snapshotLocked()
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := f.cache.Store(ctx, v, stamp, data); err != nil {
		f.m.CacheErrors.Inc()
	}
}
