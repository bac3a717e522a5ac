package api

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"encoding/json"
	"github.com/bbsboard/bbs/pkg/feed"
	"github.com/bbsboard/bbs/pkg/sse"
	"github.com/bbsboard/bbs/pkg/wire"
	"github.com/gin-gonic/gin"
)

// stream serves GET /api/topics/stream. See README's "The stream": a
// snapshot (or, on resume, exactly the missed events), then every change
// as it happens, heartbeats from the hub, and on drain a jittered retry.
//
// Once the request is accepted the connection is taken over from net/http
// and handed to the hub, which writes to it directly (see sse.Hub): the
// handler's goroutine, its buffers and net/http's chunked writer would
// otherwise cost every idle stream tens of KiB and every event a goroutine
// hand-off. The response is delimited by the connection's close, as
// HTTP/1.1 allows.
func (s *Server) stream(c *gin.Context) {
	if s.draining.Load() {
		fail(c, http.StatusServiceUnavailable, "draining", "this replica is shutting down; reconnect")
		return
	}
	if !s.feed.Ready() {
		s.failErr(c, feed.ErrNotReady)
		return
	}
	release, ok := s.admitStream(c)
	if !ok {
		return
	}
	lastID, resume := lastEventID(c.Request)
	conn, _, err := http.NewResponseController(c.Writer).Hijack()
	if err != nil {
		release()
		s.log.Error("stream: cannot take over the connection", "err", err)
		fail(c, http.StatusInternalServerError, "internal", "streams need an HTTP/1.1 connection")
		return
	}
	// The server's deadline for reading a request would end the stream:
	// from here on the stream reads only to notice the client leaving.
	_ = conn.SetReadDeadline(time.Time{})
	s.m.StreamsOpen.Inc()
	// From here on the request is a stream: the middleware neither times
	// nor logs it; it is timed and logged once, when it ends.
	c.Set(streamKey, true)
	info, opened := requestInfoOf(c, s.cfg.TrustedProxies), time.Now()
	var status atomic.Int32
	status.Store(http.StatusOK)
	st, err := s.hub.NewStream(conn, sse.StreamOptions{
		WriteTimeout: s.cfg.WriteTimeout,
		Resync:       s.resync,
		OnClose: func() {
			release()
			s.m.StreamsOpen.Dec()
			took := time.Since(opened)
			s.m.StreamDuration.Observe(took.Seconds())
			s.accessLog(context.Background(), slog.LevelInfo, "stream ended", info, int(status.Load()), took)
		},
	})
	if err != nil {
		release()
		s.m.StreamsOpen.Dec()
		writeUnavailable(conn, s.cfg.Replica)
		conn.Close()
		s.accessLog(c.Request.Context(), slog.LevelInfo, "request", info, http.StatusServiceUnavailable, time.Since(opened))
		return
	}
	head := streamHead(c.Writer.Header())
	if err := s.feed.Attach(c.Request.Context(), st, lastID, resume, head, sse.Retry(s.cfg.Retry.Milliseconds())); err != nil {
		// Starting or shutting down since the checks above: nothing was
		// written yet, so the client gets an ordinary 503.
		status.Store(http.StatusServiceUnavailable)
		writeUnavailable(conn, s.cfg.Replica)
		st.Close()
	}
}

// admitStream reserves a place for one more stream under both caps (the
// replica's, the client address's), or answers the refusal. Both are
// reserved before the stream is accepted, and given back when it ends
// (release, which may be called more than once): checking a count and
// adding to it later lets a burst of requests all pass the check.
func (s *Server) admitStream(c *gin.Context) (func(), bool) {
	if s.cfg.MaxStreams > 0 && s.streams.reserved.Add(1) > int64(s.cfg.MaxStreams) {
		s.streams.reserved.Add(-1)
		s.m.StreamsRejected.WithLabelValues("replica_full").Inc()
		c.Header("Retry-After", "5")
		fail(c, http.StatusServiceUnavailable, "too_many_streams", "this replica holds as many streams as it may; retry")
		return nil, false
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			if s.cfg.MaxStreams > 0 {
				s.streams.reserved.Add(-1)
			}
		})
	}
	if s.cfg.MaxStreamsPerClient > 0 {
		key := clientKey(clientIP(c.Request, s.cfg.TrustedProxies))
		if !s.streams.acquire(key, s.cfg.MaxStreamsPerClient) {
			release()
			s.m.StreamsRejected.WithLabelValues("client_full").Inc()
			c.Header("Retry-After", "5")
			fail(c, http.StatusTooManyRequests, "too_many_streams", "this address holds as many streams as it may; close one and retry")
			return nil, false
		}
		replicaRelease := release
		var clientOnce sync.Once
		release = func() {
			clientOnce.Do(func() { s.streams.release(key) })
			replicaRelease()
		}
	}
	return release, true
}

// resync starts a stream again after it fell a whole queue behind: from the
// last version it was sent, exactly the missed events while the backlog
// still holds them, else a snapshot.
func (s *Server) resync(st *sse.Stream, last int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.feed.Attach(ctx, st, last, true)
}

// goodbye is the last frame of a draining stream: a retry spread over the
// jitter window, so the other replicas do not get every client at once.
func (s *Server) goodbye() sse.Frame {
	jitter := time.Duration(rand.Int64N(int64(s.cfg.DrainJitter) + 1))
	return sse.Retry(jitter.Milliseconds())
}

// streamHead is the response's status line and headers: those the
// middleware set and the stream's own.
func streamHead(h http.Header) sse.Frame {
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Connection", "close")
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	_ = h.Write(&b)
	b.WriteString("\r\n")
	return sse.Frame{Data: b.Bytes()}
}

// writeUnavailable answers a taken-over connection with the 503 any other
// request would get while the replica starts or drains.
func writeUnavailable(conn net.Conn, replica string) {
	body, _ := json.Marshal(wire.Error{Error: notReady})
	resp := &http.Response{
		StatusCode:    http.StatusServiceUnavailable,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json; charset=utf-8"}, "Retry-After": {"1"}, "X-Replica": {replica}},
		ContentLength: int64(len(body)),
		Body:          io.NopCloser(bytes.NewReader(body)),
		Close:         true,
	}
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = resp.Write(conn)
}

// lastEventID reads Last-Event-ID (or ?lastEventId= for clients that
// cannot set headers).
func lastEventID(r *http.Request) (int64, bool) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("lastEventId")
	}
	id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || id < 0 {
		return 0, false
	}
	return id, true
}
