package testenv

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// StartRedisCluster starts a throwaway Redis Cluster of three masters from
// redis-server processes and returns its redis+cluster:// URL.
func StartRedisCluster(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("testenv: redis-cli not found: %v\ninstall it: apt-get install -y redis-tools", err)
	}
	var addrs []string
	for i := 0; i < 3; i++ {
		r := &RedisServer{t: t, Port: FreePort(t), dir: t.TempDir()}
		r.args = []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"}
		r.Start()
		t.Cleanup(r.Stop)
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(r.Port))
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("testenv: redis-cli --cluster create: %v\n%s", err, out)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer c.Close()
	Eventually(t, 20*time.Second, func() error {
		info, err := c.ClusterInfo(context.Background()).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") && c.Ping(context.Background()).Err() == nil {
			return nil
		}
		return fmt.Errorf("testenv: Redis Cluster not ok: %v %s", err, info)
	})
	return fmt.Sprintf("redis+cluster://%s?addr=%s&addr=%s", addrs[0], addrs[1], addrs[2])
}
