package sse

import (
	"net"
	"sync"
	"syscall"
	"time"
)

// StreamOptions configure one stream.
type StreamOptions struct {
	// WriteTimeout bounds each blocking write of a client that is behind;
	// a client that takes no bytes for that long is cut off.
	WriteTimeout time.Duration
	// Resync is called, from the stream's own writer, when the client fell
	// a whole queue behind and frames after version last were dropped. It
	// must Attach the stream again (with exactly the missed frames, or a
	// snapshot); if it fails, the stream is closed.
	Resync func(s *Stream, last int64) error
	// OnClose runs once, when the stream has ended for any reason.
	OnClose func()
}

// Stream is one client's connection, taken over from net/http once the
// response headers are decided (they are the first frame it writes).
//
// Why not net/http's own writer (http.ResponseController, a goroutine per
// stream that flushes each event): that costs two goroutines, net/http's
// buffers and a goroutine wake-up per event per stream. Taking the
// connection over took an idle stream from 51 to about 7 KiB and the CPU
// per delivery down by a third (BENCHMARKS.md, "What was measured before
// and changed"). What the hub then relies on:
//
//   - One owner of the socket at a time. While writing is false and
//     nothing is pending, the shard's fan-out goroutine writes into it
//     directly (offer, a non-blocking write); once a write does not fit,
//     the rest is queued and the stream's own writer goroutine owns the
//     socket (writing is true) until the queue is empty, then hands it
//     back. Both changes happen under mu.
//   - Lock order: hub.mu before shard.mu or Stream.mu. Stream.mu is never
//     held while taking hub.mu or shard.mu, and Resync runs with no lock
//     held (it calls Hub.Attach, which takes hub.mu and then this
//     stream's mu).
//   - last only grows: it is the version of the last event queued or
//     written, and a frame at or below it is never queued again. restart
//     sets it to the version Attach brings the client to, which a resync
//     never puts below what the client had.
//   - No write deadline is left set: the writer clears its deadline after
//     each write, or the shard's direct writes would fail once it passed.
//   - The response ends with the connection (HTTP/1.1, no chunking), so a
//     stream needs a connection of its own: HTTP/2 is for the edge in
//     front. A connection that is not a syscall.Conn (TLS) has no direct
//     writes: every frame goes through the stream's writer goroutine.
type Stream struct {
	hub   *Hub
	conn  net.Conn
	raw   syscall.RawConn // nil: every write goes through the writer
	opts  StreamOptions
	shard *shard // set by Attach, under hub.mu

	// tryWrite's arguments and results, in fields so that the callback
	// (bound once) allocates nothing per write. Guarded by mu.
	rawWrite func(fd uintptr) bool
	wbuf     []byte
	wn       int
	werr     error

	mu         sync.Mutex
	pending    []Frame // waiting to be written, in order
	off        int     // bytes of pending[0] already written
	writing    bool    // a writer goroutine owns the socket
	last       int64   // version of the last event queued or written
	overflowed bool    // frames were dropped: resync once pending is out
	ending     bool    // write what is pending, then close
	dead       bool
}

// NewStream takes over conn. Nothing is written until Attach. The stream
// ends when the client closes the connection, a write fails, or the hub
// closes; OnClose then runs.
func (h *Hub) NewStream(conn net.Conn, opts StreamOptions) (*Stream, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	s := &Stream{hub: h, conn: conn, opts: opts}
	if sc, ok := conn.(syscall.Conn); ok && canTryWrite {
		s.raw, _ = sc.SyscallConn()
		s.rawWrite = s.writeFD
	}
	h.live.Add(1)
	h.streams.Add(1)
	go s.watch()
	return s, nil
}

// ClientAllowance is how many bytes a client may send after its request
// before its stream is closed. An EventSource sends nothing at all; a
// client that does is either confused or costing us reads.
const ClientAllowance = 4 << 10

// watch waits for the client to go away. Bytes a client sends after its
// request are read in blocks and dropped, up to ClientAllowance; beyond it,
// end of file (a half-close too, which an EventSource never does) or an
// error, the stream ends. The buffer lives on watch's stack, which an idle
// stream has anyway: reading in blocks costs no memory per stream.
func (s *Stream) watch() {
	var b [512]byte
	sent := 0
	for sent <= ClientAllowance {
		n, err := s.conn.Read(b[:])
		if err != nil {
			break
		}
		sent += n
	}
	s.kill()
	s.hub.streams.Add(-1)
	if s.opts.OnClose != nil {
		s.opts.OnClose()
	}
	s.hub.live.Done()
}

// Close ends the stream at once.
func (s *Stream) Close() { s.kill() }

func (s *Stream) kill() {
	s.mu.Lock()
	if s.dead {
		s.mu.Unlock()
		return
	}
	s.dead = true
	s.pending = nil
	s.mu.Unlock()
	_ = s.conn.Close() // wakes watch, and a writer blocked in Write
}

// restart queues first and moves the stream to version (see Hub.Attach).
func (s *Stream) restart(version int64, first []Frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead {
		return
	}
	s.pending = append(s.pending, first...)
	s.last = version
	s.overflowed = false
	s.startWriterLocked()
}

// offer hands a broadcast frame to the stream and reports whether an
// event went straight to the kernel, and whether the stream has ended.
func (s *Stream) offer(f Frame) (sent, dead bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead || s.ending || s.overflowed {
		return false, s.dead
	}
	if f.Version > 0 && f.Version <= s.last {
		return false, false // already in what Attach gave it
	}
	if s.writing || len(s.pending) > 0 {
		switch {
		case f.Version == 0:
			// A heartbeat is not needed by a stream that has frames waiting.
		case len(s.pending) >= s.hub.queue:
			s.overflowed = true
			s.hub.overflows.Add(1)
		default:
			s.pending = append(s.pending, f)
			s.last = f.Version
		}
		return false, false
	}
	if f.Version > 0 {
		s.last = f.Version
	}
	n, err := s.tryWrite(f.Data)
	switch {
	case err != nil:
		s.dead = true
		_ = s.conn.Close()
		return false, true
	case n < len(f.Data):
		s.pending = append(s.pending, f)
		s.off = n
		s.startWriterLocked()
		return false, false
	}
	return f.Version > 0, false
}

// end queues a last frame and closes the stream once it is written; it
// reports whether the stream had already ended.
func (s *Stream) end(goodbye Frame) (dead bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead || s.ending {
		return s.dead
	}
	s.ending = true
	s.pending = append(s.pending, goodbye)
	s.startWriterLocked()
	return false
}

func (s *Stream) startWriterLocked() {
	if !s.writing && len(s.pending) > 0 {
		s.setWritingLocked(true)
		go s.write()
	}
}

// setWritingLocked hands the socket to the stream's own writer (the client
// is behind) or back to the shard, keeping the hub's count of streams
// behind.
func (s *Stream) setWritingLocked(w bool) {
	if s.writing == w {
		return
	}
	s.writing = w
	if w {
		s.hub.behind.Add(1)
	} else {
		s.hub.behind.Add(-1)
	}
}

// write is the stream's own writer while its client is behind: blocking
// writes with a deadline, all waiting frames in one writev, until nothing
// is left; then later frames go straight from the shard again.
func (s *Stream) write() {
	var bufs net.Buffers
	for {
		events, ok := s.takePending(&bufs)
		if !ok || !s.writeOut(bufs, events) {
			return
		}
	}
}

// takePending moves every waiting frame into bufs, for one writev, and
// counts the events among them. It reports false when the writer's work is
// over: nothing is left (the socket goes back to the shard), the stream
// ended, or the client overflowed and could not be resynced.
func (s *Stream) takePending(bufs *net.Buffers) (events int, ok bool) {
	for {
		s.mu.Lock()
		if s.dead {
			s.setWritingLocked(false)
			s.mu.Unlock()
			return 0, false
		}
		if len(s.pending) > 0 {
			break // with mu held
		}
		switch {
		case s.ending:
			s.setWritingLocked(false)
			s.mu.Unlock()
			s.kill()
			return 0, false
		case s.overflowed:
			last := s.last
			s.mu.Unlock()
			if s.opts.Resync == nil || s.opts.Resync(s, last) != nil {
				s.kill()
				s.mu.Lock()
				s.setWritingLocked(false)
				s.mu.Unlock()
				return 0, false
			}
			continue // Resync queued what brings the client back
		}
		s.setWritingLocked(false)
		if cap(s.pending) > 8 {
			s.pending = nil // a burst is over; an idle stream keeps no queue
		}
		s.mu.Unlock()
		return 0, false
	}
	*bufs = (*bufs)[:0]
	for i, f := range s.pending {
		data := f.Data
		if i == 0 {
			data = data[s.off:]
		}
		*bufs = append(*bufs, data)
		if f.Version > 0 {
			events++
		}
	}
	clear(s.pending)
	s.pending, s.off = s.pending[:0], 0
	s.mu.Unlock()
	return events, true
}

// writeOut writes bufs, waiting at most WriteTimeout for the client, and
// reports whether the stream is still alive.
func (s *Stream) writeOut(bufs net.Buffers, events int) bool {
	if s.opts.WriteTimeout > 0 {
		_ = s.conn.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
	}
	_, err := bufs.WriteTo(s.conn)
	if err == nil && s.opts.WriteTimeout > 0 {
		// A deadline left behind would fail the shard's direct writes
		// once it passed.
		err = s.conn.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		s.kill()
		s.mu.Lock()
		s.setWritingLocked(false)
		s.mu.Unlock()
		return false
	}
	s.hub.delivered.Add(int64(events))
	return true
}

// tryWrite writes what fits in the socket's buffer now, without waiting.
// Called with mu held.
func (s *Stream) tryWrite(p []byte) (int, error) {
	if s.raw == nil {
		return 0, nil
	}
	s.wbuf = p
	err := s.raw.Write(s.rawWrite)
	n, werr := s.wn, s.werr
	s.wbuf, s.werr = nil, nil
	if err != nil {
		return 0, err
	}
	if werr != nil {
		if isWouldBlock(werr) {
			return 0, nil
		}
		return 0, werr
	}
	return max(n, 0), nil
}

func (s *Stream) writeFD(fd uintptr) bool {
	s.wn, s.werr = writeNow(fd, s.wbuf)
	return true // never wait for room: the writer does that
}
