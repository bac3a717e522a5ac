package sse

import (
	"errors"
	"sync"
	"sync/atomic"
)

// ErrClosed is returned by Subscribe once the hub is shutting down.
var ErrClosed = errors.New("sse hub closed")

// Hub hands frames to subscribers. Broadcast never blocks: a subscriber
// whose queue is full is marked overflowed and gets nothing more, so one
// slow client can never hold up the others or make the server buffer
// without bound; its stream resyncs it (see Subscriber.Overflowed).
type Hub struct {
	queue int

	mu     sync.RWMutex
	subs   map[*Subscriber]struct{}
	closed bool

	overflows atomic.Int64
}

// NewHub returns a hub whose subscribers queue at most queue frames.
func NewHub(queue int) *Hub {
	if queue < 1 {
		queue = 1
	}
	return &Hub{queue: queue, subs: map[*Subscriber]struct{}{}}
}

// Subscriber is one stream's end of the hub.
type Subscriber struct {
	frames   chan Frame
	overflow chan struct{}
	once     sync.Once
	closing  chan struct{}
}

// Frames delivers the frames broadcast since Subscribe, in order.
func (s *Subscriber) Frames() <-chan Frame { return s.frames }

// Overflowed is closed when a frame was dropped because the queue was
// full. The stream must then resync: nothing more is delivered.
func (s *Subscriber) Overflowed() <-chan struct{} { return s.overflow }

// Closing is closed when the hub shuts down; the stream should tell its
// client to reconnect elsewhere and end.
func (s *Subscriber) Closing() <-chan struct{} { return s.closing }

// Subscribe adds a subscriber. Callers that need "everything after version
// V" call it while holding whatever lock orders their broadcasts.
func (h *Hub) Subscribe() (*Subscriber, error) {
	s := &Subscriber{
		frames:   make(chan Frame, h.queue),
		overflow: make(chan struct{}),
		closing:  make(chan struct{}),
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	h.subs[s] = struct{}{}
	return s, nil
}

// Unsubscribe removes s; it is safe to call more than once.
func (h *Hub) Unsubscribe(s *Subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// Broadcast queues f for every subscriber and returns how many took it.
// Callers serialise Broadcast calls to keep one order for everybody.
func (h *Hub) Broadcast(f Frame) (queued int) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		select {
		case s.frames <- f:
			queued++
		default:
			if f.Version == 0 {
				continue // a heartbeat is not needed by a stream that has frames waiting
			}
			s.once.Do(func() {
				h.overflows.Add(1)
				close(s.overflow)
			})
		}
	}
	return queued
}

// Overflows counts subscribers that overflowed since the hub started.
func (h *Hub) Overflows() int64 { return h.overflows.Load() }

// Len is the number of subscribers.
func (h *Hub) Len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs)
}

// Close refuses new subscribers and tells every current one to end.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for s := range h.subs {
		close(s.closing)
	}
}
