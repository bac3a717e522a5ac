package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/redisclient"
	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/redis/go-redis/v9"
)

// TestOnRedisCluster runs three replicas on a real three-master Redis
// Cluster: the change channel is sharded pub/sub under the "{bbs}" hashtag,
// so the snapshot key and the channel share one slot. Every client
// converges as on a single Redis.
func TestOnRedisCluster(t *testing.T) {
	url := testenv.StartRedisCluster(t)
	c := newCluster(t, url)
	c.base["REDIS_PREFIX"] = "{bbs}"
	replicas := []*replica{c.start("r1", nil), c.start("r2", nil), c.start("r3", nil)}
	// The replicas subscribed with SSUBSCRIBE on the node owning the slot.
	rc, err := redisclient.New(url)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	cc := rc.UniversalClient.(*redis.ClusterClient)
	shardSubs := func() (n int64) {
		_ = cc.ForEachMaster(context.Background(), func(ctx context.Context, node *redis.Client) error {
			m, err := node.PubSubShardNumSub(ctx, "{bbs}:changes").Result()
			if err == nil {
				atomic.AddInt64(&n, m["{bbs}:changes"])
			}
			return nil
		})
		return n
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if n := shardSubs(); n != 3 {
			return fmt.Errorf("sharded subscribers on {bbs}:changes = %d, want 3", n)
		}
		return nil
	})
	var views []*view
	for _, r := range replicas {
		views = append(views, watch(t, r.id+"/client", r.URL, ""))
	}
	for i := 0; i < 30; i++ {
		replicas[i%3].create(t, fmt.Sprintf("on the cluster %d", i))
	}
	for _, r := range replicas {
		r.waitServes(t, 30, 5*time.Second)
	}
	want := replicas[0].list(t)
	if want.Version != 30 {
		t.Fatalf("version %d after 30 writes", want.Version)
	}
	for _, v := range views {
		v.waitVersion(30, 10*time.Second)
		sameList(t, v.name, v.state(), want)
		v.check()
	}
	for _, r := range replicas {
		sameList(t, r.id, r.list(t), want)
	}
}
