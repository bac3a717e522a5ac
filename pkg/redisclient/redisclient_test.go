package redisclient_test

import (
	"testing"

	"github.com/bbsboard/bbs/pkg/redisclient"
	"github.com/redis/go-redis/v9"
)

func TestNewPicksTheDeployment(t *testing.T) {
	for _, tc := range []struct {
		url     string
		cluster bool
		kind    string
		bad     bool
	}{
		{url: "redis://127.0.0.1:6379/0", kind: "*redis.Client"},
		{url: "rediss://user:pw@example.internal:6380/1", kind: "*redis.Client"},
		{url: "redis+cluster://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002", cluster: true, kind: "*redis.ClusterClient"},
		{url: "redis+sentinel://127.0.0.1:26379?master_name=mymaster&addr=127.0.0.1:26380", kind: "*redis.Client"},
		{url: "memcached://127.0.0.1:11211", bad: true},
		{url: "127.0.0.1:6379", bad: true},
		{url: "redis+cluster://127.0.0.1:7000?bogus=1", bad: true},
	} {
		c, err := redisclient.New(tc.url)
		if tc.bad {
			if err == nil {
				t.Errorf("%s: accepted", tc.url)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		var kind string
		switch c.UniversalClient.(type) {
		case *redis.Client:
			kind = "*redis.Client"
		case *redis.ClusterClient:
			kind = "*redis.ClusterClient"
		}
		if kind != tc.kind || c.Cluster != tc.cluster {
			t.Errorf("%s: got %s cluster=%v, want %s cluster=%v", tc.url, kind, c.Cluster, tc.kind, tc.cluster)
		}
		c.Close()
	}
}
