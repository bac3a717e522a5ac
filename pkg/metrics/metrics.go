// Package metrics provides the Prometheus metrics a replica exports. Each
// server gets its own registry, so several replicas in one test process do
// not share counters.
package metrics

import (
	"net/http"

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
	CacheHits        prometheus.Counter
	CacheMisses      prometheus.Counter
	CacheErrors      prometheus.Counter
	Version          prometheus.Gauge
	DependencyUp     *prometheus.GaugeVec
	RateLimitSkipped prometheus.Counter
	Requests         *prometheus.CounterVec
}

// New registers the collectors in a fresh registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{
		registry:         r,
		StreamsOpen:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "bbs_streams_open", Help: "SSE streams open on this replica."}),
		StreamsRejected:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bbs_streams_rejected_total", Help: "SSE streams refused, by reason."}, []string{"reason"}),
		EventsPublished:  prometheus.NewCounter(prometheus.CounterOpts{Name: "bbs_events_published_total", Help: "Change notices this replica published on the bus."}),
		PublishErrors:    prometheus.NewCounter(prometheus.CounterOpts{Name: "bbs_publish_errors_total", Help: "Change notices that could not be published (other replicas catch up from the change log)."}),
		EventsApplied:    prometheus.NewCounter(prometheus.CounterOpts{Name: "bbs_events_applied_total", Help: "Changes applied to this replica's topic list."}),
		Resyncs:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bbs_resyncs_total", Help: "Times this replica caught up with the change log or reloaded its list, by reason."}, []string{"reason"}),
		CacheHits:        prometheus.NewCounter(prometheus.CounterOpts{Name: "bbs_cache_hits_total", Help: "Topic list reads served from the cache."}),
		CacheMisses:      prometheus.NewCounter(prometheus.CounterOpts{Name: "bbs_cache_misses_total", Help: "Topic list reads that went to the database."}),
		CacheErrors:      prometheus.NewCounter(prometheus.CounterOpts{Name: "bbs_cache_errors_total", Help: "Failed reads or writes of the shared cache."}),
		Version:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "bbs_version", Help: "The cluster version this replica's list is at."}),
		DependencyUp:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bbs_dependency_up", Help: "1 when a shared dependency answered its last check."}, []string{"dependency"}),
		RateLimitSkipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "bbs_rate_limit_skipped_total", Help: "Writes and stream openings let through unchecked because the rate limiter's store was down."}),
		Requests:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bbs_http_requests_total", Help: "HTTP requests by route and status code."}, []string{"route", "code"}),
	}
	f(m.StreamsOpen)
	f(m.StreamsRejected)
	f(m.EventsPublished)
	f(m.PublishErrors)
	f(m.EventsApplied)
	f(m.Resyncs)
	f(m.CacheHits)
	f(m.CacheMisses)
	f(m.CacheErrors)
	f(m.Version)
	f(m.DependencyUp)
	f(m.RateLimitSkipped)
	f(m.Requests)
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

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
