// Package config provides the server's configuration, read from the
// environment with the defaults README's Configuration table lists.
package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bbsboard/bbs/pkg/redact"
)

// Config is everything the server reads from its environment.
type Config struct {
	HTTPAddr            string
	InternalAddr        string // metrics, readiness detail, pprof; "": none (INTERNAL_ADDR=off)
	Pprof               bool   // net/http/pprof on InternalAddr
	DatabaseURL         string // "" or sqlite:PATH: embedded SQLite
	RedisURL            string // "": in-process bus and cache, one replica
	RedisPrefix         string // keys and channels live under it
	AdminToken          string
	ReplicaID           string
	SnapshotLimit       int
	Heartbeat           time.Duration
	ShutdownGrace       time.Duration // after DrainDelay: to finish requests and streams
	DrainDelay          time.Duration // on SIGTERM: not-ready, answering with Connection: close, listener open
	DrainJitter         time.Duration
	Retry               time.Duration
	WriteRate           int // writes per minute per client address
	WriteBurst          int
	StreamRate          int // streams opened per minute per client address
	StreamBurst         int
	TrustedProxies      []netip.Prefix
	MaxStreams          int
	MaxStreamsPerClient int
	CheckEvery          time.Duration
	LogLevel            slog.Level
}

// Load reads the configuration through getenv (os.Getenv in production,
// a map in tests).
func Load(getenv func(string) string) (Config, error) {
	p := parser{getenv: getenv}
	host, _ := os.Hostname()
	c := Config{
		HTTPAddr:            p.str("HTTP_ADDR", ":8080"),
		InternalAddr:        p.str("INTERNAL_ADDR", ":9090"),
		Pprof:               p.bool("PPROF", false),
		DatabaseURL:         p.str("DATABASE_URL", ""),
		RedisURL:            p.str("REDIS_URL", ""),
		RedisPrefix:         p.str("REDIS_PREFIX", "{bbs}"),
		AdminToken:          p.str("ADMIN_TOKEN", ""),
		ReplicaID:           p.str("REPLICA_ID", host),
		SnapshotLimit:       p.int("SNAPSHOT_LIMIT", 100),
		Heartbeat:           p.dur("SSE_HEARTBEAT", 15*time.Second),
		ShutdownGrace:       p.dur("SHUTDOWN_GRACE", 25*time.Second),
		DrainJitter:         p.dur("DRAIN_JITTER", 5*time.Second),
		Retry:               p.dur("SSE_RETRY", 2*time.Second),
		WriteBurst:          p.int("WRITE_BURST", 10),
		StreamBurst:         p.int("STREAM_BURST", 20),
		MaxStreams:          p.int("MAX_STREAMS", 20000),
		MaxStreamsPerClient: p.int("MAX_STREAMS_PER_CLIENT", 50),
		CheckEvery:          p.dur("VERSION_CHECK", 5*time.Second),
	}
	// A replica behind a load balancer keeps answering while the balancer
	// and kept-alive clients move away; alone (no Redis: one replica, as
	// `make run`) there is nowhere for them to go, so it stops at once.
	drainDelay := 5 * time.Second
	if c.RedisURL == "" {
		drainDelay = 0
	}
	c.DrainDelay = p.dur("DRAIN_DELAY", drainDelay)
	c.WriteRate = p.rate("WRITE_RATE", 30)
	c.StreamRate = p.rate("STREAM_RATE", 60)
	c.TrustedProxies = p.prefixes("TRUSTED_PROXIES")
	if strings.EqualFold(c.InternalAddr, "off") {
		c.InternalAddr = ""
	}
	p.checkInternal(c)
	if err := c.LogLevel.UnmarshalText([]byte(p.str("LOG_LEVEL", "info"))); err != nil {
		p.errs = append(p.errs, fmt.Sprintf("LOG_LEVEL: %v", err))
	}
	if c.SnapshotLimit < 1 || c.SnapshotLimit > 500 {
		p.errs = append(p.errs, "SNAPSHOT_LIMIT: must be 1..500")
	}
	if c.Heartbeat <= 0 {
		p.errs = append(p.errs, "SSE_HEARTBEAT: must be positive")
	}
	if len(p.errs) > 0 {
		return Config{}, fmt.Errorf("configuration: %s", strings.Join(p.errs, "; "))
	}
	return c, nil
}

// LogValue logs every setting, with secrets masked: the URLs' passwords
// and credential parameters (pkg/redact), and the admin token.
func (c Config) LogValue() slog.Value {
	internal := c.InternalAddr
	if internal == "" {
		internal = "off"
	}
	proxies := make([]string, len(c.TrustedProxies))
	for i, p := range c.TrustedProxies {
		proxies[i] = p.String()
	}
	admin := "unset"
	if c.AdminToken != "" {
		admin = redact.Mask
	}
	return slog.GroupValue(
		slog.String("http_addr", c.HTTPAddr),
		slog.String("internal_addr", internal),
		slog.Bool("pprof", c.Pprof),
		slog.String("database", maskURL(c.DatabaseURL, "sqlite:bbs.db")),
		slog.String("redis", maskURL(c.RedisURL, "in-process")),
		slog.String("redis_prefix", c.RedisPrefix),
		slog.String("admin_token", admin),
		slog.String("replica", c.ReplicaID),
		slog.Int("snapshot_limit", c.SnapshotLimit),
		slog.Duration("heartbeat", c.Heartbeat),
		slog.Duration("shutdown_grace", c.ShutdownGrace),
		slog.Duration("drain_delay", c.DrainDelay),
		slog.Duration("drain_jitter", c.DrainJitter),
		slog.Duration("retry", c.Retry),
		slog.Int("write_rate_per_min", c.WriteRate),
		slog.Int("write_burst", c.WriteBurst),
		slog.Int("stream_rate_per_min", c.StreamRate),
		slog.Int("stream_burst", c.StreamBurst),
		slog.Any("trusted_proxies", proxies),
		slog.Int("max_streams", c.MaxStreams),
		slog.Int("max_streams_per_client", c.MaxStreamsPerClient),
		slog.Duration("version_check", c.CheckEvery),
		slog.String("log_level", c.LogLevel.String()),
	)
}

// maskURL masks the credentials of a connection string (pkg/redact).
func maskURL(u, empty string) string {
	if u == "" {
		return empty
	}
	return redact.URL(u)
}

type parser struct {
	getenv func(string) string
	errs   []string
}

func (p *parser) str(key, def string) string {
	if v := strings.TrimSpace(p.getenv(key)); v != "" {
		return v
	}
	return def
}

func (p *parser) int(key string, def int) int {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		p.errs = append(p.errs, fmt.Sprintf("%s: %q is not a non-negative integer", key, v))
	}
	return n
}

func (p *parser) dur(key string, def time.Duration) time.Duration {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		p.errs = append(p.errs, fmt.Sprintf("%s: %q is not a duration like 15s", key, v))
	}
	return d
}

// rate accepts "30" or "30/min" (writes per minute).
func (p *parser) rate(key string, def int) int {
	v := strings.TrimSuffix(p.str(key, ""), "/min")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		p.errs = append(p.errs, fmt.Sprintf("%s: %q is not a rate like 30/min", key, v))
	}
	return n
}

func (p *parser) bool(key string, def bool) bool {
	switch v := strings.ToLower(p.str(key, "")); v {
	case "":
		return def
	case "1", "true", "on", "yes":
		return true
	case "0", "false", "off", "no":
		return false
	default:
		p.errs = append(p.errs, fmt.Sprintf("%s: %q is not on or off", key, v))
		return def
	}
}

// prefixes reads a list of CIDRs or addresses; "none" is the empty list,
// said explicitly.
func (p *parser) prefixes(key string) []netip.Prefix {
	var out []netip.Prefix
	if strings.EqualFold(p.str(key, ""), "none") {
		return nil
	}
	for _, f := range strings.FieldsFunc(p.str(key, ""), func(r rune) bool { return r == ',' || r == ' ' }) {
		pf, err := netip.ParsePrefix(f)
		if err != nil {
			addr, aerr := netip.ParseAddr(f)
			if aerr != nil {
				p.errs = append(p.errs, fmt.Sprintf("%s: %q is not a CIDR or address", key, f))
				continue
			}
			pf = netip.PrefixFrom(addr, addr.BitLen())
		}
		out = append(out, pf)
	}
	return out
}

// checkInternal refuses an internal listener that would share the public
// port (what it serves is for operators only), pprof without one, and
// DEBUG_ADDR, which INTERNAL_ADDR and PPROF replaced.
func (p *parser) checkInternal(c Config) {
	if p.getenv("DEBUG_ADDR") != "" {
		p.errs = append(p.errs, "DEBUG_ADDR: gone; pprof is served on INTERNAL_ADDR with PPROF=on")
	}
	if c.InternalAddr == "" {
		if c.Pprof {
			p.errs = append(p.errs, "PPROF: needs INTERNAL_ADDR (it is off)")
		}
		return
	}
	ih, ip, err := net.SplitHostPort(c.InternalAddr)
	if err != nil {
		p.errs = append(p.errs, fmt.Sprintf("INTERNAL_ADDR: %q is not host:port (or off)", c.InternalAddr))
		return
	}
	hh, hp, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return // the listener says so
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	if ip == hp && ip != "0" && (ih == hh || wildcard(ih) || wildcard(hh)) {
		p.errs = append(p.errs, fmt.Sprintf("INTERNAL_ADDR %q: must not be the public port (HTTP_ADDR %q): it serves metrics and readiness details", c.InternalAddr, c.HTTPAddr))
	}
}
