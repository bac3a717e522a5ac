package limit

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
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
	return rdb, testenv.RedisPrefix(t, url) // its cleanup takes redis_rate's "rate:" keys too
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

// TestRedisConcurrentAsksShareRoundTrips: 200 writes at once from 20
// clients with a burst of 5 each are counted exactly (5 allowed per
// client, whatever pipeline each went in), with fewer round trips than
// writes, the first one included (Redis has not seen the script yet, so
// the EVALSHA fails and goes again as EVAL, pipelined too).
func TestRedisConcurrentAsksShareRoundTrips(t *testing.T) {
	// A Redis of its own: it has never seen the script.
	opt, err := redis.ParseURL(testenv.StartRedis(t).URL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	prefix := "{bbs}"
	var trips atomic.Int64
	rdb.AddHook(countTrips{&trips})
	l := NewRedis(rdb, prefix, Rate{PerMinute: 6, Burst: 5})
	ctx := testenv.Context(t, 10*time.Second)
	var allowed [20]atomic.Int64
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			ok, _, err := l.Allow(ctx, "192.0.2."+strconv.Itoa(i%20))
			if err != nil {
				t.Error(err)
			}
			if ok {
				allowed[i%20].Add(1)
			}
		})
	}
	wg.Wait()
	for c := range allowed {
		if n := allowed[c].Load(); n != 5 {
			t.Errorf("client %d: %d writes allowed, want the burst of 5", c, n)
		}
	}
	if n := trips.Load(); n >= 200 || n < 1 {
		t.Errorf("%d round trips for 200 writes: want them shared", n)
	}
	t.Logf("200 writes in %d round trips", trips.Load())
}

// TestRedisHungAnswersInTime: with Redis accepting connections but never
// answering, Allow returns with an error at the caller's deadline, not at
// the pipeline's.
func TestRedisHungAnswersInTime(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.BlackHole(t), MaxRetries: -1, ContextTimeoutEnabled: true})
	defer rdb.Close()
	l := NewRedis(rdb, "{bbs}", Rate{PerMinute: 30, Burst: 10})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if ok, _, err := l.Allow(ctx, "192.0.2.1"); err == nil || ok {
		t.Fatalf("Redis hung: ok=%v err=%v, want an error", ok, err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Fatalf("Allow took %v with a 200ms deadline", took)
	}
}

// countTrips counts the round trips to Redis: a command alone or a
// pipeline.
type countTrips struct{ n *atomic.Int64 }

func (countTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h countTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}
