package feed_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/bus"
	"github.com/bbsboard/bbs/pkg/cache"
	"github.com/bbsboard/bbs/pkg/feed"
	"github.com/bbsboard/bbs/pkg/metrics"
	"github.com/bbsboard/bbs/pkg/sse"
	"github.com/bbsboard/bbs/pkg/store"
	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

// replica is the part of a server these tests need: a store, a feed on a
// Redis bus and cache, and its hub.
type replica struct {
	store *store.Store
	feed  *feed.Feed
	hub   *sse.Hub
	m     *metrics.Metrics
}

type setup struct {
	dbURL, redisURL, prefix string
}

func newSetup(t *testing.T, redisURL string) setup {
	t.Helper()
	if redisURL == "" {
		redisURL = testenv.RedisURL(t)
	}
	s := setup{dbURL: testenv.PostgresURL(t), redisURL: redisURL}
	s.prefix = testenv.RedisPrefix(t, redisURL)
	st := openStore(t, s.dbURL)
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func openStore(t *testing.T, url string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), url, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// start runs a replica until the test ends. The periodic check is set far
// out so that what a test sees comes from the path it exercises.
func (s setup) start(t *testing.T, cfg feed.Config) *replica {
	t.Helper()
	opt, err := redis.ParseURL(s.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.MaxRetries = 200*time.Millisecond, 500*time.Millisecond, 0
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	if cfg.CheckEvery == 0 {
		cfg.CheckEvery = time.Hour
	}
	r := &replica{store: openStore(t, s.dbURL), hub: sse.NewHub(64), m: metrics.New()}
	r.feed = feed.New(cfg, slog.New(slog.DiscardHandler), r.store,
		bus.NewRedis(rdb, s.prefix+":changes", false), cache.NewRedis(rdb, s.prefix+":snapshot"), r.hub, r.m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.feed.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testenv.Eventually(t, 5*time.Second, func() error {
		if !r.feed.Ready() {
			return errors.New("feed not ready")
		}
		return nil
	})
	return r
}

// write creates a topic through the store and publishes it the way the
// API does.
func (r *replica) write(t *testing.T, comment string) topic.Change {
	t.Helper()
	_, hash := topic.NewToken()
	_, changes, err := r.store.Create(context.Background(), comment, hash)
	if err != nil {
		t.Fatal(err)
	}
	r.feed.Publish(changes)
	return changes[0]
}

// atVersion is the check that the replica (named what) has reached
// version v.
func atVersion(what string, r *replica, v int64) func() error {
	return func() error {
		if got := r.feed.Version(); got < v {
			return fmt.Errorf("%s: at version %d, want %d", what, got, v)
		}
		return nil
	}
}

// testutilCount reads the resync counter for reason.
func testutilCount(r *replica, reason string) float64 {
	return testutil.ToFloat64(r.m.Resyncs.WithLabelValues(reason))
}
