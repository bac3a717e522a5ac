package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a bus on Redis pub/sub.
type Redis struct {
	rdb     redis.UniversalClient
	channel string
	sharded bool
}

// NewRedis returns a bus on channel. sharded selects SPUBLISH/SSUBSCRIBE,
// which a Redis Cluster needs: the channel then lives on the one node that
// owns its slot, instead of every message crossing the whole cluster bus.
func NewRedis(rdb redis.UniversalClient, channel string, sharded bool) *Redis {
	return &Redis{rdb: rdb, channel: channel, sharded: sharded}
}

// Publish sends msgs, in order, to every replica subscribed right now.
// Several go in one pipeline: one round trip for a burst of changes (a
// committed batch, say) instead of one each.
func (r *Redis) Publish(ctx context.Context, msgs ...[]byte) error {
	publish := func(c redis.Cmdable, msg []byte) error {
		if r.sharded {
			return c.SPublish(ctx, r.channel, msg).Err()
		}
		return c.Publish(ctx, r.channel, msg).Err()
	}
	var err error
	if len(msgs) == 1 {
		err = publish(r.rdb, msgs[0])
	} else {
		_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, m := range msgs {
				_ = publish(p, m) // queued; Pipelined reports the first failure
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("publish %d notices: %w", len(msgs), err)
	}
	return nil
}

// Subscribe delivers messages to handle until ctx ends. go-redis
// reconnects and resubscribes by itself, and whatever was published in
// between is lost; ChannelWithSubscriptions tells us each time it
// (re)subscribed, and resubscribed is called then so the caller can fetch
// what it missed.
func (r *Redis) Subscribe(ctx context.Context, handle func([]byte), resubscribed func()) error {
	var ps *redis.PubSub
	if r.sharded {
		ps = r.rdb.SSubscribe(ctx, r.channel)
	} else {
		ps = r.rdb.Subscribe(ctx, r.channel)
	}
	defer ps.Close()
	ch := ps.ChannelWithSubscriptions(
		redis.WithChannelSize(4096),
		redis.WithChannelHealthCheckInterval(time.Second),
	)
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				return fmt.Errorf("subscribe %s: channel closed", r.channel)
			}
			switch m := m.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" || m.Kind == "ssubscribe" {
					resubscribed()
				}
			case *redis.Message:
				handle([]byte(m.Payload))
			}
		}
	}
}
