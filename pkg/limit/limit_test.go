package limit

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/redis/go-redis/v9"
)

// limiter is the method set both implementations share (the HTTP layer
// declares the same interface where it uses it).
type limiter interface {
	Allow(ctx context.Context, client string) (bool, time.Duration, error)
}

var (
	_ limiter = (*Memory)(nil)
	_ limiter = (*Redis)(nil)
)

// clock is a settable time for the memory limiter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestMemoryBurstThenRate(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	m := newMemory(Rate{PerMinute: 6, Burst: 3}, clk.now)
	ctx := context.Background()
	for i := range 3 {
		if ok, _, _ := m.Allow(ctx, "a"); !ok {
			t.Fatalf("write %d of the burst refused", i+1)
		}
	}
	ok, wait, err := m.Allow(ctx, "a")
	if ok || err != nil || wait <= 0 || wait > 10*time.Second {
		t.Fatalf("4th write: ok=%v wait=%v err=%v, want refused with a wait of at most 10s", ok, wait, err)
	}
	// Refused attempts must not push the next allowed write further away.
	for range 5 {
		m.Allow(ctx, "a")
	}
	if ok, _, _ := m.Allow(ctx, "b"); !ok {
		t.Fatal("another client shares a's budget")
	}
	clk.advance(wait)
	if ok, _, _ := m.Allow(ctx, "a"); !ok {
		t.Fatalf("write after waiting %v refused", wait)
	}
	if ok, _, _ := m.Allow(ctx, "a"); ok {
		t.Fatal("only one write's budget came back, two were allowed")
	}
}

func TestMemoryZeroBurstMeansOne(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	m := newMemory(Rate{PerMinute: 60, Burst: 0}, clk.now)
	if ok, _, _ := m.Allow(context.Background(), "a"); !ok {
		t.Fatal("burst 0 refused the first write")
	}
	if ok, _, _ := m.Allow(context.Background(), "a"); ok {
		t.Fatal("burst 0 allowed two writes at once")
	}
}

// TestMemoryEvictsIdle: memory stays bounded by the clients seen recently,
// and a forgotten client comes back with a whole budget, as it would have
// had anyway.
func TestMemoryEvictsIdle(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	r := Rate{PerMinute: 60, Burst: 2} // whole again after 2s idle
	m := newMemory(r, clk.now)
	ctx := context.Background()
	for i := range 1000 {
		m.Allow(ctx, strconv.Itoa(i))
	}
	if m.Len() != 1000 {
		t.Fatalf("Len = %d, want 1000", m.Len())
	}
	clk.advance(r.refill())
	m.Allow(ctx, "new")
	if m.Len() != 1 {
		t.Fatalf("after a refill window Len = %d, want 1 (the idle ones evicted)", m.Len())
	}
	for range 2 {
		if ok, _, _ := m.Allow(ctx, "7"); !ok {
			t.Fatal("an evicted client did not get a whole budget back")
		}
	}
}

func redisClient(t *testing.T) (*redis.Client, string) {
	t.Helper()
	url := testenv.RedisURL(t)
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	prefix := testenv.RedisPrefix(t, url)
	// redis_rate puts "rate:" before the prefix, out of RedisPrefix's reach.
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), "rate:"+prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	return rdb, prefix
}

// TestRedisSharedBudget: two limiters (two replicas) on one Redis spend
// from one budget per client, and the key sits under the prefix.
func TestRedisSharedBudget(t *testing.T) {
	rdb, prefix := redisClient(t)
	opt := *rdb.Options()
	other := redis.NewClient(&opt)
	defer other.Close()
	r := Rate{PerMinute: 6, Burst: 4}
	replicas := []*Redis{NewRedis(rdb, prefix, r), NewRedis(other, prefix, r)}
	ctx := testenv.Context(t, 10*time.Second)
	for i := range 4 {
		ok, _, err := replicas[i%2].Allow(ctx, "192.0.2.1")
		if err != nil || !ok {
			t.Fatalf("write %d: ok=%v err=%v", i+1, ok, err)
		}
	}
	for i := range 2 {
		ok, wait, err := replicas[i%2].Allow(ctx, "192.0.2.1")
		if err != nil || ok || wait <= 0 || wait > 10*time.Second {
			t.Fatalf("over budget on replica %d: ok=%v wait=%v err=%v", i%2, ok, wait, err)
		}
	}
	if ok, _, err := replicas[1].Allow(ctx, "192.0.2.2"); err != nil || !ok {
		t.Fatalf("another client: ok=%v err=%v", ok, err)
	}
	key := "rate:" + prefix + ":rate:192.0.2.1"
	if n, err := rdb.Exists(ctx, key).Result(); err != nil || n != 1 {
		t.Fatalf("key %q: exists=%d err=%v", key, n, err)
	}
	if ttl, err := rdb.TTL(ctx, key).Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("key %q expires in %v (err %v), want within the refill window", key, ttl, err)
	}
}

// TestRedisDown: with no Redis the limiter says so with an error (the
// caller lets the write through) and does not hang.
func TestRedisDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), MaxRetries: -1})
	defer rdb.Close()
	l := NewRedis(rdb, "{bbs}", Rate{PerMinute: 30, Burst: 10})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if ok, _, err := l.Allow(ctx, "192.0.2.1"); err == nil || ok {
		t.Fatalf("Redis down: ok=%v err=%v, want an error", ok, err)
	}
}
