package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// stream is one SSE client. It keeps what the report needs and nothing
// else: the last version seen, gaps, resyncs and the latency of each
// bench event (its comment carries the writer's send time).
type stream struct {
	conn   net.Conn
	fd     int32
	poller *poller
	ended  *atomic.Int64 // the set's count of streams that ended
	first  chan error    // the first snapshot arrived, or the stream ended

	// parser state, touched only by the poller
	partial  []byte // a line not yet complete
	id       int64
	snapshot bool
	data     []byte
	signaled bool

	mu        sync.Mutex
	last      int64   // version of the last event or snapshot
	gaps      int64   // versions skipped between two events
	snapshots int     // snapshots received (more than one: a resync)
	lat       []int32 // microseconds, since the last take
	err       error   // why the stream ended, if it did
}

// streamSet is the streams of one part of the bench.
type streamSet struct {
	pollers *pollers
	streams []*stream
	ended   atomic.Int64
}

// sources returns n loopback source addresses in 127.0.N.x, so no single
// address holds more streams or makes more writes than the per-client
// limits allow, and no one address runs out of ephemeral ports.
func sources(block byte, n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = netip.AddrFrom4([4]byte{127, block + byte(i/250), 0, byte(1 + i%250)})
	}
	return out
}

// open adds n streams, spread round-robin over targets and srcs, and waits
// until each has its snapshot.
func (ss *streamSet) open(ctx context.Context, n int, targets []string, srcs []netip.Addr) error {
	const parallel = 64
	sem := make(chan struct{}, parallel)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	base := len(ss.streams)
	fresh := make([]*stream, n)
	for i := range fresh {
		fresh[i] = &stream{ended: &ss.ended, first: make(chan error, 1)}
	}
	ss.streams = append(ss.streams, fresh...)
	for i, s := range fresh {
		k := base + i
		target, src := targets[k%len(targets)], srcs[k%len(srcs)]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := s.connect(ctx, target, src, ss.pollers); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return nil
}

// connect dials from src, sends the request, and returns once the
// snapshot arrived; from then on a poller reads the socket.
func (s *stream) connect(ctx context.Context, target string, src netip.Addr, ps *pollers) error {
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return fmt.Errorf("stream from %s to %s: %w", src, target, err)
	}
	s.conn = conn
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET /api/topics/stream HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", target); err != nil {
		conn.Close()
		return err
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return fmt.Errorf("stream from %s to %s: %w", src, target, err)
	}
	if resp.StatusCode != http.StatusOK || len(resp.TransferEncoding) > 0 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		conn.Close()
		return fmt.Errorf("stream from %s to %s: %s %v (want 200, not chunked): %s", src, target, resp.Status, resp.TransferEncoding, body)
	}
	_ = conn.SetDeadline(time.Time{})
	buffered, _ := br.Peek(br.Buffered())
	if err := ps.add(s, conn, buffered); err != nil {
		conn.Close()
		return err
	}
	select {
	case err := <-s.first:
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("stream from %s to %s: no snapshot within 30s", src, target)
	case <-ctx.Done():
		return ctx.Err()
	}
}

var (
	fieldID      = []byte("id: ")
	fieldEvent   = []byte("event: ")
	fieldData    = []byte("data: ")
	snapshotName = []byte("snapshot")
	versionKey   = []byte(`"version":`)
	benchMark    = []byte(`"comment":"bench `)
)

// feed parses bytes read from the socket at now.
func (s *stream) feed(p []byte, now int64) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.partial = append(s.partial, p...)
			return
		}
		line := p[:i]
		if len(s.partial) > 0 {
			s.partial = append(s.partial, line...)
			line = s.partial
		}
		s.line(bytes.TrimSuffix(line, []byte("\r")), now)
		s.partial = shrink(s.partial)
		p = p[i+1:]
	}
}

// shrink empties a buffer, dropping it if a snapshot made it large: 10,000
// idle streams must not each keep one.
func shrink(b []byte) []byte {
	if cap(b) > 4096 {
		return nil
	}
	return b[:0]
}

func (s *stream) line(line []byte, now int64) {
	switch {
	case len(line) == 0: // end of event
		if s.snapshot {
			v := number(s.data, versionKey)
			s.mu.Lock()
			s.last, s.snapshots = v, s.snapshots+1
			s.mu.Unlock()
			if !s.signaled {
				s.signaled = true
				s.first <- nil
			}
		} else if s.id > 0 {
			s.event(s.id, now, s.data)
		}
		s.id, s.snapshot, s.data = 0, false, shrink(s.data)
	case bytes.HasPrefix(line, fieldID):
		s.id, _ = strconv.ParseInt(string(line[len(fieldID):]), 10, 64)
	case bytes.HasPrefix(line, fieldEvent):
		s.snapshot = bytes.Equal(line[len(fieldEvent):], snapshotName)
	case bytes.HasPrefix(line, fieldData):
		s.data = append(s.data, line[len(fieldData):]...)
	}
}

// end records that the server closed the stream.
func (s *stream) end(err error) {
	if err == nil {
		err = io.EOF
	}
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	s.ended.Add(1)
	if !s.signaled {
		s.signaled = true
		s.first <- err
	}
}

func (s *stream) event(id, now int64, data []byte) {
	sentAt := number(data, benchMark)
	s.mu.Lock()
	if s.last > 0 && id > s.last+1 {
		s.gaps += id - s.last - 1
	}
	if id > s.last {
		s.last = id
	}
	if sentAt > 0 {
		us := (now - sentAt) / 1000
		s.lat = append(s.lat, int32(min(us, 1<<31-1)))
	}
	s.mu.Unlock()
}

// number reads the decimal digits that follow key in p, or 0.
func number(p, key []byte) int64 {
	i := bytes.Index(p, key)
	if i < 0 {
		return 0
	}
	var n int64
	for _, c := range p[i+len(key):] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// tally is what the streams saw since the previous tally.
type tally struct {
	latencies []int32 // microseconds
	missing   int64   // versions up to final that some stream has not seen
	resyncs   int     // snapshots beyond each stream's first
	ended     int     // streams that ended
}

// take collects and resets what the streams recorded. final is the last
// committed version; a stream that has not reached it is missing events.
func (ss *streamSet) take(final int64) tally {
	var t tally
	for _, s := range ss.streams {
		s.mu.Lock()
		t.latencies = append(t.latencies, s.lat...)
		s.lat = s.lat[:0]
		t.missing += s.gaps + max(0, final-s.last)
		s.gaps = 0
		t.resyncs += max(0, s.snapshots-1)
		s.snapshots = min(s.snapshots, 1)
		s.mu.Unlock()
	}
	t.ended = int(ss.ended.Load())
	return t
}

// caughtUp reports whether every stream has reached version v.
func (ss *streamSet) caughtUp(v int64) bool {
	for _, s := range ss.streams {
		s.mu.Lock()
		last := s.last
		s.mu.Unlock()
		if last < v {
			return false
		}
	}
	return true
}

func (ss *streamSet) close() {
	for _, s := range ss.streams {
		if s.poller != nil {
			s.poller.remove(s)
		}
		if s.conn != nil {
			s.conn.Close()
		}
	}
	ss.streams = nil
}
