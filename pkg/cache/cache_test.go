package cache_test

import (
	"context"
	"sync"
	"testing"

	"github.com/bbsboard/bbs/pkg/cache"
	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/redis/go-redis/v9"
)

type snapshotCache interface {
	Load(ctx context.Context) (version, stamp int64, data []byte, err error)
	Store(ctx context.Context, version, stamp int64, data []byte) (bool, error)
	Version(ctx context.Context) (int64, error)
}

func caches(t *testing.T) map[string]snapshotCache {
	url := testenv.RedisURL(t)
	opt, _ := redis.ParseURL(url)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return map[string]snapshotCache{
		"redis":  cache.NewRedis(rdb, testenv.RedisPrefix(t, url)+":snapshot"),
		"memory": cache.NewMemory(),
	}
}

// TestOlderNeverOverwritesNewer: many writers storing snapshots of
// different versions at once leave the newest one, whatever the order.
func TestOlderNeverOverwritesNewer(t *testing.T) {
	for name, c := range caches(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if v, _, data, err := c.Load(ctx); err != nil || v != 0 || data != nil {
				t.Fatalf("empty cache: %d %q %v", v, data, err)
			}
			var wg sync.WaitGroup
			for v := int64(1); v <= 50; v++ {
				wg.Go(func() {
					if _, err := c.Store(ctx, v, v, []byte{byte(v)}); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if ok, _ := c.Store(ctx, 7, 7, []byte("old")); ok {
				t.Fatal("stored version 7 over 50")
			}
			v, stamp, data, err := c.Load(ctx)
			if err != nil || v != 50 || stamp != 50 || len(data) != 1 || data[0] != 50 {
				t.Fatalf("cache holds %d (stamp %d) %q (%v), want 50", v, stamp, data, err)
			}
			if v, _ := c.Version(ctx); v != 50 {
				t.Fatalf("Version = %d", v)
			}
		})
	}
}
