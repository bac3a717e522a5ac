package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/bbsboard/bbs/pkg/metrics"
	"github.com/gin-gonic/gin"
)

// requestIDHeader carries a request's id in and out: a load balancer or a
// client may set it to follow one request through its logs and ours.
const requestIDHeader = "X-Request-ID"

// maxRequestID bounds an id taken from a client: it is logged with every
// line about the request and sent back, so it must stay short.
const maxRequestID = 64

// Keys of what the middleware and the handlers share through gin's context.
const (
	requestIDKey = "bbs.request_id"
	// streamKey is set by the stream handler once it took the connection
	// over: the request is then a long-lived stream, logged and timed
	// when it ends (see stream) rather than when the handler returns.
	streamKey = "bbs.stream"
)

// requestID is the client's X-Request-ID when it is acceptable (1 to 64
// characters of A-Z a-z 0-9 . _ -, so it can be neither a log injection
// nor a place to smuggle data), else a new random one.
func requestID(r *http.Request) string {
	if id := r.Header.Get(requestIDHeader); validRequestID(id) {
		return id
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// route is the request's gin route template ("/api/topics/:id"), never
// the raw path: metrics labelled with it have a bounded number of series
// whatever paths clients make up.
func route(c *gin.Context) string {
	if r := c.FullPath(); r != "" {
		return r
	}
	return "unmatched"
}

// observe counts a finished request, and times it unless it became a
// stream (streams are timed when they end, in bbs_stream_duration_seconds,
// so the request histogram shows how long requests wait, not how long
// people keep the page open), and logs it in one structured line.
func (s *Server) observe(c *gin.Context, began time.Time) {
	rt, status := route(c), c.Writer.Status()
	s.m.Requests.WithLabelValues(rt, strconv.Itoa(status)).Inc()
	if c.GetBool(streamKey) {
		return // logged when it ends
	}
	took := time.Since(began)
	s.m.RequestDuration.WithLabelValues(rt, c.Request.Method, metrics.StatusClass(status)).Observe(took.Seconds())
	level := slog.LevelInfo
	if rt == "/healthz" || rt == "/readyz" {
		// Probes come every few seconds from every load balancer and
		// kubelet: logged at debug, so the access log stays about clients.
		level = slog.LevelDebug
	}
	s.accessLog(c.Request.Context(), level, "request", requestInfoOf(c, s.cfg.TrustedProxies), status, took)
}

// requestInfo is what the access log says about a request, copied out of
// gin's context: a stream is logged when it ends, long after gin has
// reused that context for other requests.
type requestInfo struct {
	method, route, path, client, id string
}

func requestInfoOf(c *gin.Context, trusted []netip.Prefix) requestInfo {
	return requestInfo{
		method: c.Request.Method,
		route:  route(c),
		path:   c.Request.URL.Path,
		client: clientIP(c.Request, trusted).String(),
		id:     c.GetString(requestIDKey),
	}
}

// accessLog writes one line about a request: what was asked (method, the
// route template and the path, never the query string, which may carry
// anything), the answer, the time it took, who asked, and the request id.
// Headers and bodies are never logged: the edit and delete token travels
// in Authorization, and the one a create returns in the body.
func (s *Server) accessLog(ctx context.Context, level slog.Level, msg string, r requestInfo, status int, took time.Duration) {
	if !s.log.Enabled(ctx, level) {
		return
	}
	s.log.LogAttrs(ctx, level, msg,
		slog.String("method", r.method),
		slog.String("route", r.route),
		slog.String("path", r.path),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(took.Microseconds())/1000),
		slog.String("client", r.client),
		slog.String("request_id", r.id),
	)
}
