package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// healthz is liveness: the process answers. It checks nothing outside the
// process, so a dependency outage never gets replicas restarted.
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz is readiness of this replica: 503 while it loads or drains. A
// shared dependency that is down makes it "degraded" but still 200: every
// replica sees the same outage, and taking them all out of the load
// balancer would turn a degraded service into none.
func (s *Server) readyz(c *gin.Context) {
	if s.draining.Load() {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "draining"})
		return
	}
	if !s.feed.Ready() {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "starting"})
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 500*time.Millisecond)
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
	status := "ok"
	for _, state := range deps {
		if state != "ok" {
			status = "degraded"
		}
	}
	c.JSON(http.StatusOK, gin.H{"status": status, "replica": s.cfg.Replica, "version": s.feed.Version(), "dependencies": deps})
}
