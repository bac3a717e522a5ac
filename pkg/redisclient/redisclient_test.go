package redisclient_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/redisclient"
	"github.com/bbsboard/bbs/pkg/testenv"
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

// TestCallerDeadlineHonoured: against a Redis that accepts connections and
// never answers (a hung server, a half-dead proxy), a call returns at the
// caller's deadline, not at the client's own I/O timeout. Before,
// go-redis ignored the context and every call took the full second.
func TestCallerDeadlineHonoured(t *testing.T) {
	hole := testenv.BlackHole(t)
	for _, url := range []string{
		"redis://" + hole,
		"redis+cluster://" + hole,
		"redis+sentinel://" + hole + "?master_name=m",
	} {
		c, err := redisclient.New(url)
		if err != nil {
			t.Fatal(err)
		}
		const bound = 200 * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		start := time.Now()
		err = c.Ping(ctx).Err()
		took := time.Since(start)
		cancel()
		c.Close()
		if err == nil {
			t.Fatalf("%s: a black hole answered PING", url)
		}
		// The client's own timeouts are a second; anything near that means
		// the caller's deadline was ignored.
		if took > bound+300*time.Millisecond {
			t.Errorf("%s: PING with a %v deadline returned after %v (%v)", url, bound, took, err)
		}
		t.Logf("%s: returned after %v: %v", url, took.Round(time.Millisecond), err)
	}
}

// TestNewErrorsMaskCredentials: a REDIS_URL that cannot be used is named in
// the error with its credentials masked, never echoed whole.
func TestNewErrorsMaskCredentials(t *testing.T) {
	for _, url := range []string{
		"redis://user:s3cret-pw@127.0.0.1:notaport/0",
		"redis://127.0.0.1:6379/0?password=s3cret-pw&bogus=1",
		"redis+sentinel://127.0.0.1:26379?master_name=m&sentinel_password=s3cret-pw&bogus=1",
		"redis+cluster://:s3cret-pw@127.0.0.1:7000?bogus=1",
		"memcached://user:s3cret-pw@127.0.0.1:11211",
	} {
		_, err := redisclient.New(url)
		if err == nil {
			t.Errorf("%s: accepted", url)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}
