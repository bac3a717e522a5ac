package bus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/bus"
	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/redis/go-redis/v9"
)

// notices is what feed.Bus asks of both buses.
type notices interface {
	Publish(ctx context.Context, msgs ...[]byte) error
	Subscribe(ctx context.Context, handle func([]byte), resubscribed func()) error
}

// TestPublishKeepsOrder: notices published together (one pipeline on
// Redis) reach a subscriber all, once each, in the order given, on both
// buses.
func TestPublishKeepsOrder(t *testing.T) {
	opt, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	buses := map[string]notices{
		"redis":  bus.NewRedis(rdb, testenv.RedisPrefix(t, testenv.RedisURL(t))+":changes", false),
		"memory": bus.NewMemory(),
	}
	for name, b := range buses {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var mu sync.Mutex
			var got []string
			subscribed := make(chan struct{}, 1)
			go b.Subscribe(ctx, func(m []byte) {
				mu.Lock()
				got = append(got, string(m))
				mu.Unlock()
			}, func() { subscribed <- struct{}{} })
			<-subscribed
			var want []string
			for burst := range 3 {
				var msgs [][]byte
				for i := range burst*5 + 1 { // 1, 6 and 11 at a time
					m := fmt.Sprintf("b%d-%d", burst, i)
					msgs = append(msgs, []byte(m))
					want = append(want, m)
				}
				if err := b.Publish(ctx, msgs...); err != nil {
					t.Fatal(err)
				}
			}
			testenv.Eventually(t, 5*time.Second, func() error {
				mu.Lock()
				defer mu.Unlock()
				if len(got) < len(want) {
					return fmt.Errorf("%d of %d messages delivered: %v", len(got), len(want), got)
				}
				return nil
			})
			mu.Lock()
			defer mu.Unlock()
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got %v\nwant %v", got, want)
			}
		})
	}
}
