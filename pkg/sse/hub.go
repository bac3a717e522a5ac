package sse

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
)

// ErrClosed is returned once the hub is shutting down.
var ErrClosed = errors.New("sse hub closed")

// Hub fans frames out to streams.
//
// Broadcast only queues a frame; fan-out goroutines (one per shard, a
// shard per CPU) write it to each of their streams in turn with a
// non-blocking write straight into the socket, which on a healthy client
// always has room. Only a stream whose socket is full gets a goroutine of
// its own, which finishes the write with a deadline and exits once the
// client has caught up. So an event costs one system call per stream and
// no goroutine hand-off, and an idle stream costs its socket, a small
// struct and one goroutine parked on a read that notices the client
// leaving. A stream that falls a whole queue behind is resynced (see
// StreamOptions.Resync); it never holds up anyone else.
type Hub struct {
	queue  int
	shards []*shard
	next   atomic.Uint32

	mu     sync.Mutex // orders Attach against Close
	closed bool

	live      sync.WaitGroup // streams not yet detached
	streams   atomic.Int64
	overflows atomic.Int64
	delivered atomic.Int64
	behind    atomic.Int64 // streams whose own writer is catching up
}

// NewHub returns a hub whose streams may each have at most queue frames
// waiting to be written.
func NewHub(queue int) *Hub {
	h := &Hub{queue: max(queue, 1)}
	for range runtime.GOMAXPROCS(0) {
		sh := &shard{hub: h, in: make(chan message, 4096)}
		h.shards = append(h.shards, sh)
		go sh.run()
	}
	return h
}

// message is what a shard's fan-out goroutine is told to do next: write a
// frame, or end its streams (on Close, with a goodbye frame each; on
// Wait's deadline, at once).
type message struct {
	frame   Frame
	goodbye func() Frame
	kill    bool
	handed  *handed // nil: nobody waits to hear the frame went out
}

// handed runs then once the last shard has offered a frame to each of its
// streams.
type handed struct {
	shards atomic.Int32
	then   func()
}

func (h *handed) shardDone() {
	if h != nil && h.shards.Add(-1) == 0 {
		h.then()
	}
}

// yieldEvery is how many streams a shard writes to before it lets other
// goroutines run: about half a millisecond of system calls.
const yieldEvery = 64

type shard struct {
	hub *Hub
	in  chan message

	mu      sync.Mutex
	joining []*Stream // attached since the last message, not yet in streams

	streams []*Stream // owned by run
}

func (sh *shard) run() {
	for m := range sh.in {
		sh.mu.Lock()
		sh.streams = append(sh.streams, sh.joining...)
		clear(sh.joining)
		sh.joining = sh.joining[:0]
		sh.mu.Unlock()

		delivered := 0
		kept := sh.streams[:0]
		for i, s := range sh.streams {
			if i%yieldEvery == yieldEvery-1 {
				// A shard is one goroutine per CPU, busy for the whole
				// loop (a write(2) per stream): without a yield, a request
				// handler woken meanwhile (a POST's next step) waits for
				// the loop's end, up to several milliseconds per step.
				runtime.Gosched()
			}
			var sent, dead bool
			switch {
			case m.kill:
				s.kill()
				dead = true
			case m.goodbye != nil:
				dead = s.end(m.goodbye())
			default:
				sent, dead = s.offer(m.frame)
			}
			if sent {
				delivered++
			}
			if !dead {
				kept = append(kept, s)
			}
		}
		clear(sh.streams[len(kept):])
		sh.streams = kept
		if delivered > 0 {
			sh.hub.delivered.Add(int64(delivered))
		}
		m.handed.shardDone()
	}
}

// Broadcast queues f for every stream. Callers serialise Broadcast calls
// (and Attach) to keep one order for everybody.
func (h *Hub) Broadcast(f Frame) { h.toShards(message{frame: f}) }

// BroadcastThen is Broadcast, and runs then (on a fan-out goroutine; it
// must be quick) once every stream has been handed f: written to its
// socket, or queued for a stream that is behind. The feed measures
// delivery lag with it.
func (h *Hub) BroadcastThen(f Frame, then func()) {
	hd := &handed{then: then}
	hd.shards.Store(int32(len(h.shards)))
	h.toShards(message{frame: f, handed: hd})
}

// toShards queues m for every shard's fan-out goroutine.
func (h *Hub) toShards(m message) {
	for _, sh := range h.shards {
		sh.in <- m
	}
}

// Attach starts (or, after an overflow, restarts) s at version: first
// are the frames that bring its client to version, and every broadcast
// frame of a later version follows them. Call it under the lock that
// orders Broadcast; frames of version or older that are still on their
// way to the shards are skipped for s.
func (h *Hub) Attach(s *Stream, version int64, first []Frame) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	s.restart(version, first)
	if s.shard == nil {
		s.shard = h.shards[int(h.next.Add(1))%len(h.shards)]
		s.shard.mu.Lock()
		s.shard.joining = append(s.shard.joining, s)
		s.shard.mu.Unlock()
	}
	return nil
}

// Len is the number of open streams.
func (h *Hub) Len() int { return int(h.streams.Load()) }

// Queue is how many frames a stream may have waiting.
func (h *Hub) Queue() int { return h.queue }

// Overflows counts streams that fell a whole queue behind.
func (h *Hub) Overflows() int64 { return h.overflows.Load() }

// Behind is the number of streams whose client is behind right now: their
// socket was full, and a writer of their own is finishing the writes.
func (h *Hub) Behind() int { return int(h.behind.Load()) }

// Delivered counts event frames (not heartbeats) handed to the kernel
// without waiting; frames a stream's own writer sends are counted by it.
func (h *Hub) Delivered() int64 { return h.delivered.Load() }

// Close refuses new streams and ends every current one after writing it
// goodbye() (a jittered retry, say), once what it has waiting is written.
func (h *Hub) Close(goodbye func() Frame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	h.toShards(message{goodbye: goodbye})
}

// Wait returns once every stream has ended. When ctx ends first, the
// remaining streams are cut off, and Wait returns ctx's error once they
// are gone.
func (h *Hub) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { h.live.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	h.toShards(message{kill: true})
	<-done
	return ctx.Err()
}
