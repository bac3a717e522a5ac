package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/bbsboard/bbs/pkg/feed"
	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/gin-gonic/gin"
)

// Limiter is a write budget per client key. pkg/limit has two: one shared
// by the cluster through Redis and one in memory for a lone replica. When
// the budget is spent, Allow answers false and the wait until the next
// write; an error means the limiter could not be asked.
type Limiter interface {
	Allow(ctx context.Context, client string) (ok bool, retryAfter time.Duration, err error)
}

// limiterTimeout bounds the limiter's round trip: with Redis slow or down,
// a write waits this long at most before it is let through.
const limiterTimeout = 200 * time.Millisecond

// admitWrite refuses a write before anything else is done for it:
//   - one that a browser sends on behalf of another site (a form on any
//     page can post to the board, spending its visitor's write budget):
//     net/http's CrossOriginProtection reads Sec-Fetch-Site, or Origin
//     against Host where a browser sends no Sec-Fetch-Site. Requests with
//     neither (curl, programs) are not from a browser and pass; a form
//     posted from the board's own page passes too.
//   - any write before the database's schema is known to be the one this
//     binary writes. The replica checks it as it starts; a write that
//     comes first checks it itself (one query, once), rather than being
//     refused by a replica that is only milliseconds from ready: a load
//     balancer does not resend a POST it has sent.
func (s *Server) admitWrite(c *gin.Context) {
	if err := s.crossOrigin.Check(c.Request); err != nil {
		fail(c, http.StatusForbidden, "cross_site", "writes must come from the board's own pages, not another site")
		return
	}
	if s.cfg.SchemaCheck == nil || s.schemaChecked.Load() {
		return
	}
	if err := s.cfg.SchemaCheck(c.Request.Context()); err != nil {
		if !errors.Is(err, topic.ErrUnavailable) {
			s.log.Error("database schema is not this binary's", "err", err)
			err = feed.ErrNotReady
		}
		s.failErr(c, err)
		return
	}
	s.SchemaChecked()
}

// SchemaChecked records that the database's schema is this binary's.
func (s *Server) SchemaChecked() { s.schemaChecked.Store(true) }

// limitWrites spends one write of the client's budget, or answers 429 with
// Retry-After. It runs before the body is read, so a refused write costs
// no parsing. The admin token is not limited: moderating a flood is when
// it writes the most.
func (s *Server) limitWrites(c *gin.Context) {
	if s.cfg.WriteLimiter == nil || s.auth.IsAdmin(bearer(c.Request)) {
		return
	}
	s.spend(c, s.cfg.WriteLimiter, "writes")
}

// limitStreams spends one stream opening of the client's budget: every
// stream costs a snapshot (or a replay) and a connection, so opening them
// in a loop is limited like writing.
func (s *Server) limitStreams(c *gin.Context) {
	if s.cfg.StreamLimiter != nil {
		s.spend(c, s.cfg.StreamLimiter, "streams opened")
	}
}

// spend takes one from the client's budget in lim, or answers 429 with
// Retry-After and aborts.
func (s *Server) spend(c *gin.Context, lim Limiter, what string) {
	key := clientKey(clientIP(c.Request, s.cfg.TrustedProxies))
	ctx, cancel := context.WithTimeout(c.Request.Context(), limiterTimeout)
	ok, wait, err := lim.Allow(ctx, key)
	cancel()
	if err != nil {
		// Availability first: a limiter that cannot be asked
		// does not stop anyone; the metric shows how many went unchecked.
		s.m.RateLimitSkipped.Inc()
		s.log.Debug("let through unlimited", "limit", what, "err", err)
		return
	}
	if !ok {
		secs := max(int(math.Ceil(wait.Seconds())), 1)
		c.Header("Retry-After", strconv.Itoa(secs))
		fail(c, http.StatusTooManyRequests, "rate_limited",
			fmt.Sprintf("too many %s from this address; try again in %d s", what, secs))
	}
}
