package metrics

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// RedisHook times every Redis command and pipeline into
// bbs_redis_command_duration_seconds; add it to a client with AddHook.
// The command label is the command's name as the code sends it (a fixed
// set: publish, set, get, evalsha, ...), never a key.
func (m *Metrics) RedisHook() redis.Hook { return redisHook{m.RedisDuration} }

type redisHook struct{ h *prometheus.HistogramVec }

func (redisHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (r redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		r.h.WithLabelValues(cmd.Name(), result(err)).Observe(time.Since(start).Seconds())
		return err
	}
}

func (r redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		r.h.WithLabelValues("pipeline", result(err)).Observe(time.Since(start).Seconds())
		return err
	}
}

// result is "ok" for an answer and "error" for anything else. A missing
// key (redis.Nil) is an answer, and so is NOSCRIPT: go-redis sends a
// script's hash first and the script itself when the server does not hold
// it yet (after every Redis restart), so it is no failure.
func result(err error) string {
	if err == nil || errors.Is(err, redis.Nil) || strings.HasPrefix(err.Error(), "NOSCRIPT") {
		return "ok"
	}
	return "error"
}
