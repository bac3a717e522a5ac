package api

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

const (
	// checkTimeout bounds one round of dependency checks.
	checkTimeout = 500 * time.Millisecond
	// publicCheckTTL is how long the public /readyz reuses a round of
	// checks: whoever asks, and however often, the replica pings its
	// database and Redis at most once per TTL on its behalf.
	publicCheckTTL = time.Second
)

// healthz is liveness: the process answers. It checks nothing outside the
// process, so a dependency outage never gets replicas restarted.
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz is readiness of this replica, for probes and load balancers on
// the public port: 503 while it starts or drains, else 200. A shared
// dependency that is down makes it "degraded" but still 200: every replica
// sees the same outage, and taking them all out of the load balancer would
// turn a degraded service into none. It says nothing else: which
// dependency is down, and why (an error text may name internal hosts), is
// on the internal listener (InternalHandler).
func (s *Server) readyz(c *gin.Context) {
	code, status := s.readiness()
	if code == http.StatusOK {
		status = overall(s.depCache.get(s.checkDependencies))
	}
	c.JSON(code, gin.H{"status": status})
}

// Ready reports whether the replica is ready: neither starting nor
// draining (for the bbs_ready gauge).
func (s *Server) Ready() bool {
	code, _ := s.readiness()
	return code == http.StatusOK
}

// readiness is 503 "draining" or "starting", or 200 "ok".
func (s *Server) readiness() (int, string) {
	switch {
	case s.draining.Load():
		return http.StatusServiceUnavailable, "draining"
	case !s.feed.Ready():
		return http.StatusServiceUnavailable, "starting"
	}
	return http.StatusOK, "ok"
}

// checkDependencies runs every check at once, within checkTimeout, and
// records each outcome in bbs_dependency_up. Each state is "ok" or
// "down: <error>".
func (s *Server) checkDependencies() map[string]string {
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	deps := make(map[string]string, len(s.checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range s.checks {
		wg.Go(func() {
			state, up := "ok", 1.0
			if err := check(ctx); err != nil {
				state, up = "down: "+err.Error(), 0
			}
			s.m.DependencyUp.WithLabelValues(name).Set(up)
			mu.Lock()
			deps[name] = state
			mu.Unlock()
		})
	}
	wg.Wait()
	return deps
}

// overall is "ok" when every dependency is, else "degraded".
func overall(deps map[string]string) string {
	for _, state := range deps {
		if state != "ok" {
			return "degraded"
		}
	}
	return "ok"
}

// depCache shares one round of checks between the public /readyz requests
// of publicCheckTTL; concurrent requests wait for the round in progress
// instead of starting their own.
type depCache struct {
	mu   sync.Mutex
	at   time.Time
	deps map[string]string
}

func (d *depCache) get(check func() map[string]string) map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.deps == nil || time.Since(d.at) >= publicCheckTTL {
		d.deps = check()
		d.at = time.Now()
	}
	return d.deps
}

// InternalHandler serves what only operators may see, for a listener of
// its own that the load balancer never routes to (INTERNAL_ADDR):
//
//	GET /metrics   Prometheus metrics
//	GET /readyz    readiness with details: the status code and status of
//	               the public /readyz, the replica, its version and each
//	               dependency's state with the error when it is down,
//	               checked afresh on every request
//	GET /healthz   liveness
//
// Every answer carries X-Replica. extra, when not nil, adds routes (pprof).
func (s *Server) InternalHandler(extra func(*http.ServeMux)) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.m.Handler())
	mux.HandleFunc("GET /readyz", s.readyzDetail)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	if extra != nil {
		extra(mux)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Replica", s.cfg.Replica)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	})
}

// readyzDetail is the operators' /readyz: the dependencies are checked
// even while the replica starts, so a replica stuck "starting" says why.
func (s *Server) readyzDetail(w http.ResponseWriter, r *http.Request) {
	deps := s.checkDependencies()
	code, status := s.readiness()
	if code == http.StatusOK {
		status = overall(deps)
	}
	writeJSON(w, code, map[string]any{
		"status":       status,
		"replica":      s.cfg.Replica,
		"version":      s.feed.Version(),
		"dependencies": deps,
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
