// Package config provides the server's configuration, read from the
// environment. Settings is the one list of the variables: their names,
// defaults, help and which are secret; README's Configuration table is
// checked against it.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Config is everything the server reads from its environment. Each field
// is the CamelCase of its variable (HTTP_ADDR: HTTPAddr); Settings says
// how each is read and what it means.
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
	SSEHeartbeat        time.Duration
	SSERetry            time.Duration
	DrainDelay          time.Duration // on SIGTERM: not-ready, answering with Connection: close, listener open
	ShutdownGrace       time.Duration // after DrainDelay: to finish requests and streams
	DrainJitter         time.Duration
	VersionCheck        time.Duration
	MaxStreams          int
	WriteRate           int // writes per minute per client address
	WriteBurst          int
	StreamRate          int // streams opened per minute per client address
	StreamBurst         int
	TrustedProxies      []netip.Prefix
	MaxStreamsPerClient int
	LogLevel            slog.Level
}

// Load reads the configuration through getenv (os.Getenv in production,
// a map in tests). Every problem is reported, not only the first.
func Load(getenv func(string) string) (Config, error) {
	var (
		c    Config
		errs []string
	)
	for _, s := range Settings() {
		err := s.load(&c, strings.TrimSpace(getenv(s.Name)))
		// A list (TRUSTED_PROXIES) has an error per bad entry.
		var joined interface{ Unwrap() []error }
		if errors.As(err, &joined) {
			for _, e := range joined.Unwrap() {
				errs = append(errs, fmt.Sprintf("%s: %v", s.Name, e))
			}
		} else if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", s.Name, err))
		}
	}
	errs = append(errs, checkInternal(c, getenv)...)
	if c.SnapshotLimit < 1 || c.SnapshotLimit > 500 {
		errs = append(errs, "SNAPSHOT_LIMIT: must be 1..500")
	}
	if c.SSEHeartbeat <= 0 {
		errs = append(errs, "SSE_HEARTBEAT: must be positive")
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

// checkInternal refuses an internal listener that would share the public
// port (what it serves is for operators only), pprof without one, and
// DEBUG_ADDR, which INTERNAL_ADDR and PPROF replaced.
func checkInternal(c Config, getenv func(string) string) []string {
	var errs []string
	if getenv("DEBUG_ADDR") != "" {
		errs = append(errs, "DEBUG_ADDR: gone; pprof is served on INTERNAL_ADDR with PPROF=on")
	}
	if c.InternalAddr == "" {
		if c.Pprof {
			errs = append(errs, "PPROF: needs INTERNAL_ADDR (it is off)")
		}
		return errs
	}
	ih, ip, err := net.SplitHostPort(c.InternalAddr)
	if err != nil {
		return append(errs, fmt.Sprintf("INTERNAL_ADDR: %q is not host:port (or off)", c.InternalAddr))
	}
	hh, hp, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return errs // the listener says so
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	if ip == hp && ip != "0" && (ih == hh || wildcard(ih) || wildcard(hh)) {
		errs = append(errs, fmt.Sprintf("INTERNAL_ADDR %q: must not be the public port (HTTP_ADDR %q): it serves metrics and readiness details", c.InternalAddr, c.HTTPAddr))
	}
	return errs
}
