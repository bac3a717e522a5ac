package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"
)

// drainDelay is DRAIN_DELAY's default with Redis. A replica behind a load
// balancer keeps answering while the balancer and kept-alive clients move
// away; alone (no Redis: one replica, as `make run`) there is nowhere for
// them to go, so it stops at once.
const drainDelay = 5 * time.Second

// Settings is every variable the server reads, in the order of README's
// Configuration table. A setting whose default depends on another comes
// after it (DRAIN_DELAY after REDIS_URL).
func Settings() []Setting {
	return []Setting{
		setting("HTTP_ADDR", text(""), ":8080", func(c *Config) *string { return &c.HTTPAddr },
			"public listen address: the board, the API, /healthz and the bare /readyz"),
		setting("INTERNAL_ADDR", addrOrOff(), ":9090", func(c *Config) *string { return &c.InternalAddr },
			"operators' listen address: /metrics, /readyz with details, pprof; never the public port; off: none"),
		setting("PPROF", onOff(), false, func(c *Config) *bool { return &c.Pprof },
			"on: net/http/pprof under /debug/pprof/ on INTERNAL_ADDR"),
		setting("DATABASE_URL", connURL("sqlite:bbs.db"), "", func(c *Config) *string { return &c.DatabaseURL },
			"postgres://… for a shared database, or sqlite:PATH for the embedded one").
			shown("unset: sqlite:bbs.db").loggedAs("database"),
		setting("REDIS_URL", connURL("in-process"), "", func(c *Config) *string { return &c.RedisURL },
			"redis://, redis+sentinel:// or redis+cluster:// URL of the bus and cache every replica shares").
			shown("unset: in-process bus and cache (one replica only)").loggedAs("redis"),
		setting("REDIS_PREFIX", text(""), "{bbs}", func(c *Config) *string { return &c.RedisPrefix },
			"prefix of every Redis key and channel"),
		setting("ADMIN_TOKEN", token("unset"), "", func(c *Config) *string { return &c.AdminToken },
			"bearer token that may edit, delete and purge any topic; long and random").
			shown("unset: no admin"),
		derived("REPLICA_ID", text(""), "hostname", hostname, func(c *Config) *string { return &c.ReplicaID },
			"sent as X-Replica on every response").loggedAs("replica"),
		setting("SNAPSHOT_LIMIT", count(), 100, func(c *Config) *int { return &c.SnapshotLimit },
			"topics in the window, the snapshot and the default page (1..500; equal on every replica)"),
		setting("SSE_HEARTBEAT", duration(), 15*time.Second, func(c *Config) *time.Duration { return &c.SSEHeartbeat },
			"comment line on every stream this often (under every proxy's idle timeout)").loggedAs("heartbeat"),
		setting("SSE_RETRY", duration(), 2*time.Second, func(c *Config) *time.Duration { return &c.SSERetry },
			"retry: sent to each stream on connect").loggedAs("retry"),
		derived("DRAIN_DELAY", duration(),
			fmt.Sprintf("%v; %v without REDIS_URL (one replica: nowhere else to go)", drainDelay, time.Duration(0)),
			func(c Config) time.Duration {
				if c.RedisURL == "" {
					return 0
				}
				return drainDelay
			},
			func(c *Config) *time.Duration { return &c.DrainDelay },
			"on SIGTERM, how long to stay not-ready but answering (Connection: close) before the listener stops"),
		setting("SHUTDOWN_GRACE", duration(), 25*time.Second, func(c *Config) *time.Duration { return &c.ShutdownGrace },
			"after DRAIN_DELAY, time to finish requests in flight and close streams"),
		setting("DRAIN_JITTER", duration(), 5*time.Second, func(c *Config) *time.Duration { return &c.DrainJitter },
			"window over which draining streams are told to reconnect"),
		setting("VERSION_CHECK", duration(), 5*time.Second, func(c *Config) *time.Duration { return &c.VersionCheck },
			"how often the replica compares its version with the database's"),
		setting("MAX_STREAMS", count(), 20000, func(c *Config) *int { return &c.MaxStreams },
			"open streams per replica (503 beyond)"),
		setting("WRITE_RATE", perMinute(), 30, func(c *Config) *int { return &c.WriteRate },
			"writes per minute per client address, for the whole cluster (0: no limit)").loggedAs("write_rate_per_min"),
		setting("WRITE_BURST", count(), 10, func(c *Config) *int { return &c.WriteBurst },
			"writes a client may make at once before WRITE_RATE paces it"),
		setting("STREAM_RATE", perMinute(), 60, func(c *Config) *int { return &c.StreamRate },
			"streams opened per minute per client address, for the whole cluster (0: no limit)").loggedAs("stream_rate_per_min"),
		setting("STREAM_BURST", count(), 20, func(c *Config) *int { return &c.StreamBurst },
			"streams a client may open at once before STREAM_RATE paces it"),
		setting("TRUSTED_PROXIES", prefixes(), nil, func(c *Config) *[]netip.Prefix { return &c.TrustedProxies },
			"CIDRs or addresses of the proxies whose X-Forwarded-For names the client; none: no proxy"),
		setting("MAX_STREAMS_PER_CLIENT", count(), 50, func(c *Config) *int { return &c.MaxStreamsPerClient },
			"open streams per client address on each replica (429 beyond; 0: no cap)"),
		setting("LOG_LEVEL", level(), slog.LevelInfo, func(c *Config) *slog.Level { return &c.LogLevel },
			"debug, info, warn or error; JSON lines on stdout"),
	}
}

// hostname is REPLICA_ID's default.
func hostname(Config) string {
	h, _ := os.Hostname()
	return h
}
