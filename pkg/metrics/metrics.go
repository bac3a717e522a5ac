// Package metrics provides the Prometheus metrics a replica exports. Each
// server gets its own registry, so several replicas in one test process do
// not share counters.
//
// Every label value comes from a bounded set the code chooses (a gin route
// template, a status class, a Redis command or GORM operation name, a
// resync reason), never from what a client sends, so no client can grow
// the number of series.
package metrics

import (
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors; the packages that count take it as a dependency.
type Metrics struct {
	registry *prometheus.Registry

	StreamsOpen      prometheus.Gauge
	StreamsRejected  *prometheus.CounterVec
	EventsPublished  prometheus.Counter
	PublishErrors    prometheus.Counter
	EventsApplied    prometheus.Counter
	Resyncs          *prometheus.CounterVec
	SnapshotLoads    *prometheus.CounterVec
	ListReads        *prometheus.CounterVec
	CacheErrors      prometheus.Counter
	Version          prometheus.Gauge
	DatabaseVersion  prometheus.Gauge
	VersionBehind    prometheus.Gauge
	DependencyUp     *prometheus.GaugeVec
	RateLimitSkipped prometheus.Counter
	Requests         *prometheus.CounterVec

	RequestDuration *prometheus.HistogramVec
	StreamDuration  prometheus.Histogram
	DeliveryLag     *prometheus.HistogramVec
	DBDuration      *prometheus.HistogramVec
	DBWrite         *prometheus.HistogramVec
	RedisDuration   *prometheus.HistogramVec
}

// List read sources (ListReads).
const (
	SourceWindow   = "window"   // the in-memory window: no database read
	SourceDatabase = "database" // a page read from the database
)

// requestBuckets suit API calls: a read from memory takes well under a
// millisecond, a write a few, a database in trouble up to its 3 s bound.
var requestBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// lagBuckets suit delivery: milliseconds when healthy, up to the periodic
// version check's seconds when a notice is held back behind a gap.
var lagBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// callBuckets suit one database statement or Redis command.
var callBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 3}

// streamBuckets suit how long streams stay open: seconds (a page reload)
// to a day.
var streamBuckets = []float64{1, 10, 60, 300, 900, 3600, 4 * 3600, 24 * 3600}

// New registers the collectors in a fresh registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{
		registry:        r,
		StreamsOpen:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "bbs_streams_open", Help: "SSE streams open on this replica."}),
		StreamsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bbs_streams_rejected_total", Help: "SSE streams refused, by reason."}, []string{"reason"}),
		EventsPublished: prometheus.NewCounter(prometheus.CounterOpts{Name: "bbs_events_published_total", Help: "Change notices this replica published on the bus."}),
		PublishErrors:   prometheus.NewCounter(prometheus.CounterOpts{Name: "bbs_publish_errors_total", Help: "Change notices that could not be published (other replicas catch up from the change log)."}),
		EventsApplied:   prometheus.NewCounter(prometheus.CounterOpts{Name: "bbs_events_applied_total", Help: "Changes applied to this replica's topic list."}),
		Resyncs:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bbs_resyncs_total", Help: "Times this replica caught up with the change log or reloaded its list, by reason (a suffix /snapshot, /cache or /rebase says it reloaded)."}, []string{"reason"}),
		SnapshotLoads:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bbs_snapshot_loads_total", Help: "Whole-window loads (at start, or when the change log could not bring the replica up to date), by reason and by where the window came from (cache or database)."}, []string{"reason", "source"}),
		// Formerly bbs_cache_hits_total / bbs_cache_misses_total: the
		// first page is served from the replica's in-memory window, not
		// from the Redis cache, so "cache" named the wrong thing.
		ListReads:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bbs_list_reads_total", Help: "GET /api/topics answers by source: window (the in-memory first page, no database read) or database (older pages, larger limits, a replica not ready)."}, []string{"source"}),
		CacheErrors:      prometheus.NewCounter(prometheus.CounterOpts{Name: "bbs_cache_errors_total", Help: "Failed reads or writes of the shared (Redis) snapshot cache."}),
		Version:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "bbs_version", Help: "The cluster version this replica's list is at."}),
		DatabaseVersion:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "bbs_database_version", Help: "The database's head version as this replica's last periodic check (VERSION_CHECK) read it."}),
		VersionBehind:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "bbs_version_behind", Help: "Versions this replica's list was behind the database's head at its last periodic check (0 when current or ahead)."}),
		DependencyUp:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bbs_dependency_up", Help: "1 when a shared dependency answered its last check."}, []string{"dependency"}),
		RateLimitSkipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "bbs_rate_limit_skipped_total", Help: "Writes and stream openings let through unchecked because the rate limiter's store was down."}),
		Requests:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bbs_http_requests_total", Help: "HTTP requests on the public port by route (gin's template) and status code, SSE streams included."}, []string{"route", "code"}),

		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bbs_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request on the public port, by route (gin's template), method and status class (2xx, 3xx, 4xx, 5xx). SSE streams that were accepted are not in it (see bbs_stream_duration_seconds); refused ones are.",
			Buckets: requestBuckets}, []string{"route", "method", "class"}),
		StreamDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bbs_stream_duration_seconds",
			Help: "How long accepted SSE streams stayed open, observed when they end.", Buckets: streamBuckets}),
		DeliveryLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bbs_delivery_lag_seconds",
			Help:    "Time from a change's COMMIT (as the writing replica saw it return, by its clock) to its frame having been handed to every stream's socket on this replica (written, or queued for a stream that is behind), by origin: local (this replica's own write) or bus (another replica's notice). Changes learned from the change log or a snapshot carry no commit time and are not observed; bbs_resyncs_total counts those catch-ups.",
			Buckets: lagBuckets}, []string{"origin"}),
		DBDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bbs_db_query_duration_seconds",
			Help:    "Duration of each SQL statement GORM sends, by GORM operation (create, query, update, delete, row, raw) and result (ok, error). BEGIN and COMMIT are not statements GORM times.",
			Buckets: callBuckets}, []string{"operation", "result"}),
		DBWrite: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bbs_db_write_duration_seconds",
			Help:    "Duration of each topic write as the API waits for it (its whole transaction: BEGIN, the statements, COMMIT), by operation (create, update, delete) and result (ok; refused: not found, wrong token, key reused; unavailable: nothing written; unknown: COMMIT sent, no answer).",
			Buckets: requestBuckets}, []string{"operation", "result"}),
		RedisDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bbs_redis_command_duration_seconds",
			Help:    "Duration of each Redis command (or pipeline) by command name and result (ok, error; a missing key is ok). Pub/sub receives are not commands.",
			Buckets: callBuckets}, []string{"command", "result"}),
	}
	for _, c := range []prometheus.Collector{
		m.StreamsOpen, m.StreamsRejected, m.EventsPublished, m.PublishErrors, m.EventsApplied,
		m.Resyncs, m.SnapshotLoads, m.ListReads, m.CacheErrors, m.Version, m.DatabaseVersion,
		m.VersionBehind, m.DependencyUp, m.RateLimitSkipped, m.Requests,
		m.RequestDuration, m.StreamDuration, m.DeliveryLag, m.DBDuration, m.DBWrite, m.RedisDuration,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		f(c)
	}
	// Series that exist from the start, at 0, so that rate() and alerts
	// see them before the first event rather than "no data".
	for _, reason := range []string{"replica_full", "client_full"} {
		m.StreamsRejected.WithLabelValues(reason)
	}
	for _, reason := range []string{"gap", "check", "resubscribed"} {
		m.Resyncs.WithLabelValues(reason)
	}
	for _, origin := range []string{"local", "bus"} {
		m.DeliveryLag.WithLabelValues(origin)
	}
	for _, source := range []string{SourceWindow, SourceDatabase} {
		m.ListReads.WithLabelValues(source)
	}
	return m
}

// BuildInfo exports bbs_build_info: the binary's stamped version and the
// Go version that built it, as labels of a gauge that is always 1.
func (m *Metrics) BuildInfo(version string) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bbs_build_info", Help: "Always 1: the binary's stamped version and the Go version that built it."}, []string{"version", "goversion"})
	g.WithLabelValues(version, runtime.Version()).Set(1)
	m.registry.MustRegister(g)
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Registry is the registry the collectors are in: tests gather from it,
// and the server adds collectors of its own.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// CounterFunc exports a count kept elsewhere (the store's query counter, say).
func (m *Metrics) CounterFunc(name, help string, f func() float64) {
	m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
}

// Histogram registers a histogram observed elsewhere (the store's batch
// sizes, say), for packages that must not depend on this one.
func (m *Metrics) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	m.registry.MustRegister(h)
	return h
}

// GaugeFunc exports a level kept elsewhere (streams behind, readiness).
func (m *Metrics) GaugeFunc(name, help string, f func() float64) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// StatusClass is a status code's class label: "2xx", "4xx", ...
func StatusClass(code int) string {
	switch {
	case code >= 100 && code < 600:
		return string(rune('0'+code/100)) + "xx"
	}
	return "other"
}
