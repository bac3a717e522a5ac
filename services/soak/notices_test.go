package soak

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// duplicator listens to the replicas' notices on <prefix>:changes and,
// while active, publishes copies of them again later: each notice may
// then arrive twice, and after newer ones.
type duplicator struct {
	h       *harness
	rdb     *redis.Client
	channel string

	mu     sync.Mutex
	rng    *rand.Rand
	active bool
	wg     sync.WaitGroup
}

func newDuplicator(h *harness, rdb *redis.Client, seed uint64) *duplicator {
	return &duplicator{h: h, rdb: rdb, channel: h.cl.prefix + ":changes", rng: rand.New(rand.NewPCG(seed, 3))}
}

func (d *duplicator) setActive(on bool) {
	d.mu.Lock()
	d.active = on
	d.mu.Unlock()
}

// run subscribes until ctx ends; go-redis resubscribes by itself after a
// Redis restart.
func (d *duplicator) run(ctx context.Context) {
	ps := d.rdb.Subscribe(ctx, d.channel)
	defer ps.Close()
	ch := ps.Channel(redis.WithChannelSize(4096))
	for {
		select {
		case <-ctx.Done():
			d.wg.Wait()
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			d.maybeRepeat(ctx, m.Payload)
		}
	}
}

func (d *duplicator) maybeRepeat(ctx context.Context, payload string) {
	d.mu.Lock()
	if !d.active || d.rng.IntN(2) == 0 {
		d.mu.Unlock()
		return
	}
	copies := 1 + d.rng.IntN(2)
	delays := make([]time.Duration, copies)
	for i := range delays {
		delays[i] = between(d.rng, 10*time.Millisecond, 1500*time.Millisecond)
	}
	d.mu.Unlock()
	for _, delay := range delays {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if d.rdb.Publish(pctx, d.channel, payload).Err() == nil {
				d.h.stats.inc("faults notice-dup copies published")
			}
		}()
	}
}

// staleCache keeps copies of the shared snapshot (the hash
// <prefix>:snapshot) as it changes, to put an old one back later.
type staleCache struct {
	h   *harness
	rdb *redis.Client
	key string

	mu     sync.Mutex
	copies []map[string]string // oldest first
}

func newStaleCache(h *harness, rdb *redis.Client) *staleCache {
	return &staleCache{h: h, rdb: rdb, key: h.cl.prefix + ":snapshot"}
}

// run takes a copy every few hundred milliseconds until ctx ends.
func (s *staleCache) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(400 * time.Millisecond):
		}
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		m, err := s.rdb.HGetAll(cctx, s.key).Result()
		cancel()
		if err != nil || m["v"] == "" {
			continue
		}
		s.mu.Lock()
		if n := len(s.copies); n == 0 || s.copies[n-1]["v"] != m["v"] {
			s.copies = append(s.copies, m)
			if len(s.copies) > 20 {
				s.copies = s.copies[1:]
			}
		}
		s.mu.Unlock()
	}
}

// putBack writes an older copy over the current snapshot, whole (every
// field, whatever the server keeps in the hash).
func (s *staleCache) putBack(rng *rand.Rand) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	cur, err := s.rdb.HGet(ctx, s.key, "v").Int64()
	if err != nil {
		return
	}
	s.mu.Lock()
	var older []map[string]string
	for _, c := range s.copies {
		if v, _ := strconv.ParseInt(c["v"], 10, 64); v < cur {
			older = append(older, c)
		}
	}
	s.mu.Unlock()
	if len(older) == 0 {
		return
	}
	old := older[rng.IntN(len(older))]
	pipe := s.rdb.TxPipeline()
	pipe.Del(ctx, s.key)
	pipe.HSet(ctx, s.key, old)
	if _, err := pipe.Exec(ctx); err != nil {
		return
	}
	s.h.stats.inc("faults stale-cache")
	s.h.journal.add("fault", "put the snapshot of version %s back in the Redis cache (it held %d)", old["v"], cur)
}
