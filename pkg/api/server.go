// Package api provides the board's HTTP surface on gin: the JSON API, the
// SSE stream, the page, health and readiness; and, for a listener of its
// own, what only operators see (metrics, readiness details).
package api

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/bbsboard/bbs/pkg/feed"
	"github.com/bbsboard/bbs/pkg/metrics"
	"github.com/bbsboard/bbs/pkg/sse"
	"github.com/bbsboard/bbs/pkg/store"
	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/gin-gonic/gin"
)

// Config is the part of the server's configuration the HTTP layer uses.
type Config struct {
	Replica      string        // X-Replica on every response
	Retry        time.Duration // the retry: a stream sends on connect
	DrainJitter  time.Duration // window over which draining streams are told to come back
	WriteTimeout time.Duration // per write on a stream: a stalled client is cut off after it
	MaxStreams   int           // per replica; 0: unlimited

	MaxStreamsPerClient int            // per client address on this replica; 0: unlimited
	TrustedProxies      []netip.Prefix // peers whose X-Forwarded-For names the client
	WriteLimiter        Limiter        // writes per client address; nil: unlimited
	StreamLimiter       Limiter        // streams opened per client address; nil: unlimited
	// SchemaCheck reports whether the database's schema is this binary's
	// (topic.ErrUnavailable: it could not be asked); nil: nothing to check.
	SchemaCheck func(ctx context.Context) error
}

// Check is a readiness probe of a shared dependency.
type Check func(ctx context.Context) error

// Server holds the handlers' dependencies.
type Server struct {
	cfg    Config
	log    *slog.Logger
	store  *store.Store
	feed   *feed.Feed
	hub    *sse.Hub
	auth   topic.Authorizer
	m      *metrics.Metrics
	checks map[string]Check

	crossOrigin *http.CrossOriginProtection // refuses writes a browser sends for another site

	draining      atomic.Bool
	schemaChecked atomic.Bool   // writes may go ahead: see admitWrite
	streams       clientStreams // open streams per client address
	depCache      depCache      // the public /readyz's last round of checks
}

// New returns a server; Handler serves it.
func New(cfg Config, log *slog.Logger, st *store.Store, f *feed.Feed, hub *sse.Hub, auth topic.Authorizer, m *metrics.Metrics, checks map[string]Check) *Server {
	return &Server{cfg: cfg, log: log, store: st, feed: f, hub: hub, auth: auth, m: m, checks: checks,
		crossOrigin: http.NewCrossOriginProtection()}
}

// Drain turns the replica not-ready, makes every answer from now on say
// `Connection: close` (see closeWhenDraining) and tells every stream to
// reconnect elsewhere, each after its own jittered delay. The replica goes
// on answering every request that reaches it: the caller keeps the
// listener open for DRAIN_DELAY, so load balancers stop sending here and
// kept-alive clients leave, before it closes it.
func (s *Server) Drain() {
	s.draining.Store(true)
	s.hub.Close(s.goodbye)
}

// WaitStreams returns once every stream has ended after Drain, or cuts off
// those left when ctx ends. net/http's Shutdown does not wait for them:
// streams are taken over from it.
func (s *Server) WaitStreams(ctx context.Context) error { return s.hub.Wait(ctx) }

// Handler is the router.
func (s *Server) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// gin's own redirect would answer before the middleware, without
	// X-Replica and in HTML; an unknown path gets the JSON 404 instead.
	r.RedirectTrailingSlash = false
	r.Use(s.common, s.recover)
	r.NoRoute(func(c *gin.Context) { fail(c, http.StatusNotFound, "not_found", "no such route") })
	r.NoMethod(func(c *gin.Context) {
		fail(c, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route")
	})

	r.GET("/", s.page)
	r.GET("/static/*file", s.static)
	// Probes: liveness and a bare readiness status. Metrics, readiness
	// details and pprof are never served here: see InternalHandler.
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	// Load balancers' health checks may use HEAD.
	r.HEAD("/", s.page)
	r.HEAD("/healthz", s.healthz)
	r.HEAD("/readyz", s.readyz)
	api := r.Group("/api/topics")
	api.GET("", s.list)
	api.POST("", s.admitWrite, s.limitWrites, s.create)
	api.GET("/stream", s.limitStreams, s.stream)
	api.PATCH("/:id", s.admitWrite, s.limitWrites, s.update)
	api.DELETE("/:id", s.admitWrite, s.limitWrites, s.delete)
	return s.closeWhenDraining(r)
}

// closeWhenDraining adds `Connection: close` to every answer whose head is
// written once the replica drains, whenever its request arrived: net/http
// then closes the connection after that answer, and the client, told so,
// sends its next request on a new connection, through the load balancer to
// another replica. Deciding when the head is written, not when the request
// arrives, covers the requests in flight when the drain begins, so no
// kept-alive connection is left open and idle when the listener closes.
func (s *Server) closeWhenDraining(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dw := &drainWriter{ResponseWriter: w, draining: &s.draining}
		h.ServeHTTP(dw, r)
		dw.head() // a handler that wrote nothing: net/http writes the head now
	})
}

// drainWriter is closeWhenDraining's ResponseWriter. It passes on what
// gin and the stream need: Flush, Hijack and Unwrap (for
// http.ResponseController).
type drainWriter struct {
	http.ResponseWriter
	draining *atomic.Bool
	headDone bool
}

// head marks the answer closing if the replica drains by now.
func (w *drainWriter) head() {
	if w.headDone {
		return
	}
	w.headDone = true
	if w.draining.Load() {
		w.ResponseWriter.Header().Set("Connection", "close")
	}
}

func (w *drainWriter) WriteHeader(code int) {
	if code >= 200 { // a 1xx head is not the answer's
		w.head()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *drainWriter) Write(b []byte) (int, error) {
	w.head()
	return w.ResponseWriter.Write(b)
}

func (w *drainWriter) Flush() {
	w.head()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *drainWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *drainWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// common stamps every response with the replica and the request's id,
// then counts, times and logs it (see observe).
func (s *Server) common(c *gin.Context) {
	began := time.Now()
	id := requestID(c.Request)
	c.Set(requestIDKey, id)
	c.Header(requestIDHeader, id)
	c.Header("X-Replica", s.cfg.Replica)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Next()
	s.observe(c, began)
}

// recover turns a panic into a 500 with the standard error body; the
// detail goes to the log, never to the client.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic in handler", "route", c.FullPath(), "panic", p)
			if !c.Writer.Written() {
				fail(c, http.StatusInternalServerError, "internal", "internal error")
			}
			c.Abort()
		}
	}()
	c.Next()
}
