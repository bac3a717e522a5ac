// Package cache provides the shared snapshot of the topic list: in Redis
// for a cluster, in memory for a single replica. A snapshot is stored with
// its version and never replaced by an older one.
package cache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Memory keeps the snapshot in this process.
type Memory struct {
	mu      sync.Mutex
	version int64
	stamp   int64
	data    []byte
}

// NewMemory returns an empty in-process cache.
func NewMemory() *Memory { return &Memory{} }

// Load returns the snapshot with its version and the stamp of the change
// that made that version; version 0 means there is none.
func (m *Memory) Load(context.Context) (version, stamp int64, data []byte, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.version, m.stamp, m.data, nil
}

// Store keeps data unless a snapshot at version or newer is there.
func (m *Memory) Store(_ context.Context, version, stamp int64, data []byte) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if version <= m.version {
		return false, nil
	}
	m.version, m.stamp, m.data = version, stamp, data
	return true, nil
}

// Version returns the stored snapshot's version.
func (m *Memory) Version(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.version, nil
}

// Redis keeps the snapshot in one hash: field v is the version, s the
// stamp of the change that made it, d the encoded list. One key means one slot on a Redis Cluster, and a Lua
// script makes the compare-and-set atomic.
type Redis struct {
	rdb redis.UniversalClient
	key string
}

// NewRedis returns a cache stored under key.
func NewRedis(rdb redis.UniversalClient, key string) *Redis {
	return &Redis{rdb: rdb, key: key}
}

// storeIfNewer sets v and d only when v is newer than what is stored.
var storeIfNewer = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if tonumber(ARGV[1]) <= cur then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 's', ARGV[2], 'd', ARGV[3])
return 1`)

// Load returns the snapshot with its version and the stamp of the change
// that made that version; version 0 means there is none. A snapshot
// without a stamp (written before stamps existed) reads as stamp 0.
func (r *Redis) Load(ctx context.Context) (version, stamp int64, data []byte, err error) {
	vals, err := r.rdb.HMGet(ctx, r.key, "v", "s", "d").Result()
	if err != nil {
		return 0, 0, nil, fmt.Errorf("load snapshot: %w", err)
	}
	vs, ok1 := vals[0].(string)
	d, ok2 := vals[2].(string)
	if !ok1 || !ok2 {
		return 0, 0, nil, nil
	}
	if version, err = strconv.ParseInt(vs, 10, 64); err != nil {
		return 0, 0, nil, fmt.Errorf("load snapshot: bad version %q", vs)
	}
	if ss, ok := vals[1].(string); ok {
		if stamp, err = strconv.ParseInt(ss, 10, 64); err != nil {
			return 0, 0, nil, fmt.Errorf("load snapshot: bad stamp %q", ss)
		}
	}
	return version, stamp, []byte(d), nil
}

// Store keeps data unless a snapshot at version or newer is there already.
func (r *Redis) Store(ctx context.Context, version, stamp int64, data []byte) (bool, error) {
	n, err := storeIfNewer.Run(ctx, r.rdb, []string{r.key}, version, stamp, data).Int()
	if err != nil {
		return false, fmt.Errorf("store snapshot: %w", err)
	}
	return n == 1, nil
}

// Version returns the stored snapshot's version (0: none).
func (r *Redis) Version(ctx context.Context) (int64, error) {
	v, err := r.rdb.HGet(ctx, r.key, "v").Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("snapshot version: %w", err)
	}
	return v, nil
}
