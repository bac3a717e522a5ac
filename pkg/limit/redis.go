package limit

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Redis limits writes per client across the whole cluster: every replica
// spends from the same budget, kept in one Redis key per client (GCRA, in
// a Lua script, so concurrent writes on several replicas are counted
// exactly once each).
type Redis struct {
	lim    *redis_rate.Limiter
	limit  redis_rate.Limit
	prefix string
}

// NewRedis returns a cluster-wide limiter whose keys live under prefix.
// redis_rate puts "rate:" in front of every key, so the key of a client is
// "rate:" + prefix + ":rate:" + client; with the default prefix "{bbs}"
// its hash tag still pins it to the slot of every other bbs key.
// r.PerMinute must be positive.
func NewRedis(rdb redis.UniversalClient, prefix string, r Rate) *Redis {
	r = r.normalize()
	return &Redis{
		lim:    redis_rate.NewLimiter(&pipeline{UniversalClient: rdb}),
		limit:  redis_rate.Limit{Rate: r.PerMinute, Burst: r.Burst, Period: time.Minute},
		prefix: prefix + ":rate:",
	}
}

// Allow takes one write from client's budget. When the budget is spent it
// answers false and how long until the next write would be allowed. An
// error means Redis did not answer; the caller decides what that allows.
func (l *Redis) Allow(ctx context.Context, client string) (bool, time.Duration, error) {
	res, err := l.lim.Allow(ctx, l.prefix+client, l.limit)
	if err != nil {
		return false, 0, fmt.Errorf("limit: redis allow: %w", err)
	}
	if res.Allowed > 0 {
		return true, 0, nil
	}
	return false, res.RetryAfter, nil
}
