package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/bbsboard/bbs/pkg/api"
	"github.com/bbsboard/bbs/pkg/bus"
	"github.com/bbsboard/bbs/pkg/cache"
	"github.com/bbsboard/bbs/pkg/config"
	"github.com/bbsboard/bbs/pkg/feed"
	"github.com/bbsboard/bbs/pkg/limit"
	"github.com/bbsboard/bbs/pkg/metrics"
	"github.com/bbsboard/bbs/pkg/redisclient"
	"github.com/bbsboard/bbs/pkg/sse"
	"github.com/bbsboard/bbs/pkg/store"
	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/redis/go-redis/v9"
)

// streamQueue is each stream's bounded queue of frames.
const streamQueue = 64

// bodyTimeout bounds reading one request, body included (64 KiB at most).
const bodyTimeout = 10 * time.Second

func serve(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel})).With("replica", cfg.ReplicaID)
	log.Info("starting", "version", version, "config", cfg)

	m := metrics.New()
	m.BuildInfo(version)
	batches := m.Histogram("bbs_write_batch_size", "Creates committed together in one transaction (group commit).",
		prometheus.ExponentialBuckets(1, 2, 9))
	// The store announces every change once it has committed, to the feed,
	// which is made below from the store; no write reaches the store
	// before the feed exists (the server is not serving yet).
	var fd *feed.Feed
	st, err := openStore(ctx, cfg, log,
		store.WithAfterCommit(func(changes []topic.Change) { fd.Publish(changes) }),
		store.WithBatchObserver(func(n int) { batches.Observe(float64(n)) }))
	if err != nil {
		return err
	}
	defer st.Close()

	m.CounterFunc("bbs_db_queries_total", "SQL statements sent to the database.", func() float64 { return float64(st.Queries()) })
	// Statement timings, registered from here as a GORM plugin so the
	// store's code stays free of metrics.
	if err := st.DB().Use(m.GormPlugin()); err != nil {
		return fmt.Errorf("database metrics: %w", err)
	}
	checks := map[string]api.Check{"database": st.Ping}
	var (
		notices feed.Bus   = bus.NewMemory()
		shc     feed.Cache = cache.NewMemory()
		rdb     redis.UniversalClient
	)
	if cfg.RedisURL != "" {
		client, err := redisclient.New(cfg.RedisURL)
		if err != nil {
			return err
		}
		rdb = client
		defer rdb.Close()
		// Every command the bus, the cache, the limiters and the checks
		// send is timed (the hook sees the client's own commands only:
		// pub/sub receives are not timed).
		rdb.AddHook(m.RedisHook())
		notices = bus.NewRedis(rdb, cfg.RedisPrefix+":changes", client.Cluster)
		shc = cache.NewRedis(rdb, cfg.RedisPrefix+":snapshot")
		checks["redis"] = func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
	}

	writeLimiter := newLimiter(rdb, cfg.RedisPrefix, limit.Rate{PerMinute: cfg.WriteRate, Burst: cfg.WriteBurst})
	streamLimiter := newLimiter(rdb, cfg.RedisPrefix+":streams", limit.Rate{PerMinute: cfg.StreamRate, Burst: cfg.StreamBurst})
	hub := sse.NewHub(streamQueue)
	// Counted by the hub, where a queue overflows, so a stream that is
	// stuck in a write (and never gets to notice) is counted too.
	m.CounterFunc("bbs_events_delivered_total", "Event frames written to SSE streams.", func() float64 { return float64(hub.Delivered()) })
	m.CounterFunc("bbs_stream_overflows_total", "Streams whose bounded queue overflowed (resynced or cut off).", func() float64 { return float64(hub.Overflows()) })
	m.GaugeFunc("bbs_streams_behind", "Streams whose client is behind right now: its socket was full and the stream's own writer is catching up (a new stream counts while its snapshot goes out).", func() float64 { return float64(hub.Behind()) })
	fd = feed.New(feed.Config{
		Limit:      cfg.SnapshotLimit,
		Heartbeat:  cfg.SSEHeartbeat,
		CheckEvery: cfg.VersionCheck,
	}, log.With("component", "feed"), st, notices, shc, hub, m)
	srv := api.New(api.Config{
		Replica:      cfg.ReplicaID,
		Retry:        cfg.SSERetry,
		DrainJitter:  cfg.DrainJitter,
		WriteTimeout: 15 * time.Second,
		MaxStreams:   cfg.MaxStreams,

		MaxStreamsPerClient: cfg.MaxStreamsPerClient,
		TrustedProxies:      cfg.TrustedProxies,
		WriteLimiter:        writeLimiter,
		StreamLimiter:       streamLimiter,
		SchemaCheck:         schemaCheck(st),
	}, log, st, fd, hub, topic.NewAuthorizer(cfg.AdminToken), m, checks)

	m.GaugeFunc("bbs_ready", "1 when this replica is ready (its public /readyz answers 200), 0 while it starts or drains.", func() float64 {
		if srv.Ready() {
			return 1
		}
		return 0
	})

	feedCtx, stopFeed := context.WithCancel(context.WithoutCancel(ctx))
	defer stopFeed()
	feedDone := make(chan struct{})
	badSchema := make(chan error, 1)
	go func() {
		defer close(feedDone)
		// Until the schema is known to be this binary's, the replica
		// listens (live) but is not ready and takes no request.
		if err := waitForSchema(feedCtx, st, log); err != nil {
			badSchema <- err
			return
		}
		if feedCtx.Err() != nil {
			return // stopped while waiting
		}
		srv.SchemaChecked()
		fd.Run(feedCtx)
	}()

	var internal *internalListener
	if cfg.InternalAddr != "" {
		var extra func(*http.ServeMux)
		if cfg.Pprof {
			extra = pprofRoutes
		}
		internal, err = listenInternal(cfg.InternalAddr, srv.InternalHandler(extra), log)
		if err != nil {
			return fmt.Errorf("internal listener (INTERNAL_ADDR; off to do without): %w", err)
		}
		// Open until the end: operators watch a drain through it.
		defer internal.close()
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	conns := newConnTracker()
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ConnState:         conns.hook,
		ReadHeaderTimeout: 5 * time.Second, // slowloris
		// A request, body included, is read within this: a client that
		// trickles a body (or announces one nobody reads, which net/http
		// then drains) is cut off. Streams clear the deadline once they
		// take the connection over. No WriteTimeout: streams set a
		// deadline per write.
		ReadTimeout:    bodyTimeout,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 32 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()
	// One line with both addresses: tests and tools learn them from it.
	log.Info("listening", "addr", ln.Addr().String(), "internal_addr", internal.addr(), "pprof", cfg.Pprof)

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case err := <-badSchema:
		return err
	case <-ctx.Done():
	}

	// Drain (docs/ARCHITECTURE.md, "When things fail": a replica drained):
	// no request fails.
	//
	//  1. At once: not-ready, streams told to come back elsewhere (each
	//     after its own jittered delay), and every answer from now on says
	//     Connection: close.
	//  2. For DRAIN_DELAY the listener stays open and every request that
	//     arrives is answered as usual: load balancers see the replica
	//     not-ready or drop it, and each kept-alive client (a load
	//     balancer's upstream pool) is told to close its connection with its
	//     next answer. Closing an idle kept-alive connection ourselves would
	//     race with a request the client is sending on it: nginx does not
	//     retry a POST it has sent, and answers 502.
	//  3. The listener stops at a moment when no connection waits in its
	//     accept queue (stopListening), so none that a client may have sent
	//     a request on is reset; from then on connections are refused,
	//     which a load balancer retries elsewhere.
	//  4. Every connection accepted is answered: http.Server.Shutdown is
	//     called only once none waits for its request or serves one
	//     (Shutdown drops a request it reads after it began). It closes
	//     the connections left idle through the whole delay.
	//  5. Streams are waited for. 4 and 5 within SHUTDOWN_GRACE.
	log.Info("draining", "delay", cfg.DrainDelay, "grace", cfg.ShutdownGrace)
	drainStart := time.Now()
	srv.Drain()
	select {
	case <-time.After(cfg.DrainDelay):
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := stopListening(ln); err != nil {
		log.Warn("stopping the listener", "err", err)
	} else {
		// The accept loop ends with an error once the socket no longer
		// listens; every connection it accepted is tracked by then.
		select {
		case <-served:
		case <-shutdownCtx.Done():
		}
	}
	if werr := conns.waitAnswered(shutdownCtx); werr != nil {
		log.Warn("requests still unanswered at the end of the grace period", "err", werr)
	}
	err = httpSrv.Shutdown(shutdownCtx)
	if werr := srv.WaitStreams(shutdownCtx); werr != nil {
		log.Warn("streams cut off at the end of the grace period", "err", werr)
	}
	stopFeed()
	<-feedDone
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped", "drained_in", time.Since(drainStart).Round(time.Millisecond))
	return nil
}

// openStore opens the database without needing it to answer. The embedded
// SQLite file is migrated on the spot (one process owns it); a shared
// Postgres must have been migrated by `bbs migrate` first, so replicas of
// different versions never race to change the schema during a rolling
// update (waitForSchema checks it).
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...store.Option) (*store.Store, error) {
	st, err := store.Open(ctx, cfg.DatabaseURL, log, append(opts, store.WithWindow(cfg.SnapshotLimit))...)
	if err != nil {
		return nil, err
	}
	if st.Dialect() == "sqlite" {
		if _, err := st.Migrate(ctx); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

// schemaCheck is what a write checks before the replica has: nothing on
// SQLite, migrated by openStore.
func schemaCheck(st *store.Store) func(context.Context) error {
	if st.Dialect() == "sqlite" {
		return nil
	}
	return st.CheckSchema
}

// waitForSchema returns once the database's schema is the one this binary
// needs, or with an error when it is not. A database that does not answer
// is waited for: a replica started during an outage (a rolling update, a
// node restart) stays up and not ready instead of exiting and restarting
// in a loop, and turns ready once the database is back.
func waitForSchema(ctx context.Context, st *store.Store, log *slog.Logger) error {
	if st.Dialect() == "sqlite" {
		return nil // migrated by openStore
	}
	for backoff := 200 * time.Millisecond; ; backoff = min(backoff*2, 5*time.Second) {
		err := st.CheckSchema(ctx)
		if err == nil || !errors.Is(err, topic.ErrUnavailable) {
			return err
		}
		log.Warn("waiting for the database", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// newLimiter returns a rate limiter per client address (writes, or
// streams opened): one budget per client for the whole cluster when there
// is Redis (keys under prefix), else one in this process (there is only
// one replica then), and none when the rate is 0.
func newLimiter(rdb redis.UniversalClient, prefix string, r limit.Rate) api.Limiter {
	switch {
	case r.PerMinute == 0:
		return nil
	case rdb != nil:
		return limit.NewRedis(rdb, prefix, r)
	default:
		return limit.NewMemory(r)
	}
}
