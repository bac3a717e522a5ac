package api

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bbsboard/bbs/pkg/sse"
	"github.com/gin-gonic/gin"
)

// maxBatch bounds how many queued frames go out before one flush.
const maxBatch = 64

// stream serves GET /api/topics/stream. See DESIGN.md's SSE contract: a
// snapshot (or, on resume, exactly the missed events), then every change
// as it happens, heartbeats from the hub, and on drain a jittered retry.
func (s *Server) stream(c *gin.Context) {
	if s.draining.Load() {
		fail(c, http.StatusServiceUnavailable, "draining", "this replica is shutting down; reconnect")
		return
	}
	if s.cfg.MaxStreams > 0 && s.hub.Len() >= s.cfg.MaxStreams {
		s.m.StreamsRejected.WithLabelValues("replica_full").Inc()
		c.Header("Retry-After", "5")
		fail(c, http.StatusServiceUnavailable, "too_many_streams", "this replica holds as many streams as it may; retry")
		return
	}
	if s.cfg.MaxStreamsPerClient > 0 {
		key := clientKey(clientIP(c.Request, s.cfg.TrustedProxies))
		if !s.streams.acquire(key, s.cfg.MaxStreamsPerClient) {
			s.m.StreamsRejected.WithLabelValues("client_full").Inc()
			c.Header("Retry-After", "5")
			fail(c, http.StatusTooManyRequests, "too_many_streams", "this address holds as many streams as it may; close one and retry")
			return
		}
		defer s.streams.release(key)
	}
	lastID, resume := lastEventID(c.Request)
	ctx := c.Request.Context()
	sub, frames, err := s.feed.Subscribe(ctx, lastID, resume)
	if err != nil {
		s.failErr(c, err)
		return
	}
	defer func() { s.hub.Unsubscribe(sub) }()
	s.m.StreamsOpen.Inc()
	defer s.m.StreamsOpen.Dec()

	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	out := &streamWriter{w: c.Writer, rc: http.NewResponseController(c.Writer), timeout: s.cfg.WriteTimeout}
	out.add(sse.Retry(s.cfg.Retry.Milliseconds()))
	out.add(frames...)
	if out.flush() != nil {
		return
	}
	s.m.EventsDelivered.Add(float64(len(frames)))

	for {
		select {
		case <-ctx.Done():
			return
		case f := <-sub.Frames():
			out.add(f)
		batch:
			for n := 1; n < maxBatch; n++ {
				select {
				case f := <-sub.Frames():
					out.add(f)
				default:
					break batch
				}
			}
			delivered := out.pendingEvents
			if out.flush() != nil {
				return
			}
			s.m.EventsDelivered.Add(float64(delivered))
		case <-sub.Overflowed():
			// This client fell a whole queue behind. Start it again from the
			// last version it was sent: exactly the missed events while the
			// backlog still holds them, else a snapshot.
			s.hub.Unsubscribe(sub)
			if sub, frames, err = s.feed.Subscribe(ctx, out.last, true); err != nil {
				return
			}
			out.add(frames...)
			if out.flush() != nil {
				return
			}
		case <-sub.Closing():
			// Draining: spread the reconnects over the jitter window so the
			// other replicas do not get every client in the same instant.
			jitter := time.Duration(rand.Int64N(int64(s.cfg.DrainJitter) + 1))
			out.add(sse.Retry(jitter.Milliseconds()))
			_ = out.flush()
			return
		}
	}
}

// streamWriter batches frames and flushes them with a deadline per write,
// so a stalled client is cut off instead of holding its goroutine forever
// (the server has no global WriteTimeout: streams are long-lived).
type streamWriter struct {
	w             http.ResponseWriter
	rc            *http.ResponseController
	timeout       time.Duration
	buf           []byte
	last          int64 // version of the last event written
	pendingEvents int
}

func (o *streamWriter) add(frames ...sse.Frame) {
	for _, f := range frames {
		o.buf = append(o.buf, f.Data...)
		if f.Version > 0 {
			o.last = f.Version
			o.pendingEvents++
		}
	}
}

func (o *streamWriter) flush() error {
	if o.timeout > 0 {
		_ = o.rc.SetWriteDeadline(time.Now().Add(o.timeout))
	}
	_, err := o.w.Write(o.buf)
	if err == nil {
		err = o.rc.Flush()
	}
	o.buf = o.buf[:0]
	o.pendingEvents = 0
	return err
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
