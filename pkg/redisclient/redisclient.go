// Package redisclient provides the Redis client named by REDIS_URL: one
// server, a Sentinel-managed failover set, or a Redis Cluster, all behind
// go-redis's UniversalClient.
package redisclient

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bbsboard/bbs/pkg/redact"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Client is a connected client and what kind of deployment it talks to.
type Client struct {
	redis.UniversalClient
	// Cluster is true on a Redis Cluster, where pub/sub must be sharded
	// (SPUBLISH/SSUBSCRIBE): plain PUBLISH is broadcast over the cluster bus
	// to every node, and its reply counts only the local node's receivers.
	Cluster bool
}

// Short timeouts: a Redis outage must cost a write milliseconds, not the
// library's default seconds, and pub/sub loss is repaired by versions.
// No client sends CLIENT SETINFO (DisableIdentity) or CLIENT
// MAINT_NOTIFICATIONS (Redis Enterprise's maintenance notices; Sentinel
// clients never do) on connect: servers that lack them refuse them, which
// cost every new connection a failed round trip and showed as Redis
// errors in the metrics, where an alert would take them for an outage.
// Every client also honours its callers' context deadlines
// (ContextTimeoutEnabled): without it go-redis ignores them, and a Redis
// that accepts and never answers holds each call for the full ioTimeout
// whatever bound the caller set (the limiter's 200 ms, /readyz's 500 ms).
const (
	dialTimeout = time.Second
	ioTimeout   = time.Second
)

// New parses url and returns a client (it connects lazily):
//
//	redis://[user:pass@]host:port/db            one server (rediss:// for TLS)
//	redis+sentinel://host:port?master_name=m&addr=host2:port   Sentinel
//	redis+cluster://host:port?addr=host2:port&addr=host3:port  Cluster
//
// Query parameters are go-redis's own (dial_timeout, pool_size, ...).
// An error names the URL with its credentials masked (pkg/redact), never
// as given: a URL that does not parse is most often one whose password
// holds a reserved character, and the parser's own message would quote it.
func New(url string) (*Client, error) {
	c, err := parse(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL %s: %w", redact.URL(url), redact.Error(err, url))
	}
	return c, nil
}

func parse(url string) (*Client, error) {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return nil, errors.New("want redis://, rediss://, redis+sentinel:// or redis+cluster://")
	}
	tls := strings.HasPrefix(scheme, "rediss")
	base := "redis://"
	if tls {
		base = "rediss://"
	}
	switch strings.TrimPrefix(strings.TrimPrefix(scheme, "rediss"), "redis") {
	case "":
		opt, err := redis.ParseURL(url)
		if err != nil {
			return nil, err
		}
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.MaxRetries = dialTimeout, ioTimeout, ioTimeout, 1
		// go-redis retries a failed dial five times by default; with Redis
		// down that costs every call half a second.
		opt.DialerRetries = 1
		opt.ContextTimeoutEnabled = true
		opt.DisableIdentity = true
		opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		return &Client{UniversalClient: redis.NewClient(opt)}, nil
	case "+sentinel":
		opt, err := redis.ParseFailoverURL(base + rest)
		if err != nil {
			return nil, fmt.Errorf("sentinel: %w", err)
		}
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.MaxRetries = dialTimeout, ioTimeout, ioTimeout, 1
		opt.DialerRetries = 1
		opt.ContextTimeoutEnabled = true
		opt.DisableIdentity = true
		return &Client{UniversalClient: redis.NewFailoverClient(opt)}, nil
	case "+cluster":
		opt, err := redis.ParseClusterURL(base + rest)
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.MaxRetries = dialTimeout, ioTimeout, ioTimeout, 1
		opt.DialerRetries = 1
		opt.ContextTimeoutEnabled = true
		opt.DisableIdentity = true
		opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		return &Client{UniversalClient: redis.NewClusterClient(opt), Cluster: true}, nil
	}
	return nil, errors.New("unknown scheme: want redis, rediss, redis+sentinel or redis+cluster")
}
