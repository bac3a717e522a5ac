package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
		// Availability first (DESIGN.md): a limiter that cannot be asked
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

// clientStreams counts each client's open streams on this replica, so one
// address cannot take every stream a replica may hold.
type clientStreams struct {
	mu sync.Mutex
	n  map[string]int

	reserved atomic.Int64 // streams accepted or being accepted, for MaxStreams
}

// acquire counts one more stream for key, unless key already holds limit.
func (cs *clientStreams) acquire(key string, limit int) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.n[key] >= limit {
		return false
	}
	if cs.n == nil {
		cs.n = map[string]int{}
	}
	cs.n[key]++
	return true
}

// release counts one stream of key gone; a client with none is forgotten,
// so the map holds only clients with streams open.
func (cs *clientStreams) release(key string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.n[key] <= 1 {
		delete(cs.n, key)
		return
	}
	cs.n[key]--
}

// clientIP is the address of the client a request comes from: the TCP
// peer, unless the peer is one of the trusted proxies. Then the
// X-Forwarded-For chain is read from the right (each proxy appends the
// address it got the request from), skipping the trusted hops, and the
// first address not trusted is the client. Everything left of it was
// written by the client itself and could be anything, which is why an
// untrusted peer's X-Forwarded-For is never read at all. A malformed
// entry ends the walk at the last address a trusted hop vouched for.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseHop(r.RemoteAddr)
	if !isTrusted(peer, trusted) {
		return peer
	}
	hops := forwardedFor(r.Header)
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseHop(hops[i])
		if !a.IsValid() {
			return client
		}
		client = a
		if !isTrusted(a, trusted) {
			return a
		}
	}
	// Every hop is trusted: the leftmost is as far as anyone can vouch.
	return client
}

// forwardedFor lists the X-Forwarded-For entries of every such header in
// order (a proxy may add its own header instead of appending to one).
func forwardedFor(h http.Header) []string {
	var hops []string
	for _, v := range h.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	return hops
}

// parseHop reads an address as RemoteAddr or X-Forwarded-For give it:
// "192.0.2.1", "2001:db8::1", "192.0.2.1:1234" or "[2001:db8::1]:1234".
// An IPv4 address seen through a dual-stack socket (::ffff:192.0.2.1) is
// unmapped and any zone dropped, so prefixes and keys match it. The zero
// Addr means malformed.
func parseHop(s string) netip.Addr {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return netip.Addr{}
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone("")
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientKey is what limits count per: the address for IPv4, the /64 for
// IPv6, since one subscriber is routinely given a whole /64 and could
// otherwise take a fresh budget with every address in it.
func clientKey(a netip.Addr) string {
	switch {
	case !a.IsValid():
		// Not an IP peer (a Unix socket, say): one shared budget.
		return "unknown"
	case a.Is4():
		return a.String()
	default:
		return netip.PrefixFrom(a, 64).Masked().String()
	}
}
