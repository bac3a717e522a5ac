package main

import (
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
)

// TestRedisHungNotDown: a Redis that accepts connections and never answers
// must cost no request more than the bound its call states: a write waits
// at most the limiter's 200 ms for Redis (then lets the write through) and
// /readyz at most 500 ms. Before, go-redis ignored those deadlines and each
// write took the client's full 1 s I/O timeout.
func TestRedisHungNotDown(t *testing.T) {
	hole := testenv.BlackHole(t)
	c := newCluster(t, "")
	r := c.start("r1", map[string]string{
		"REDIS_URL":   "redis://" + hole,
		"WRITE_RATE":  "600", // the limiter runs (through the hung Redis)
		"WRITE_BURST": "100",
	})
	var took []time.Duration
	for i := range 5 {
		start := time.Now()
		if _, o := tryCreate(r.URL, "while Redis hangs"); o.Status != http.StatusCreated {
			t.Fatalf("write %d with Redis hung: %v", i, o)
		}
		took = append(took, time.Since(start))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("writes with Redis hung: median %v, slowest %v", took[2].Round(time.Millisecond), took[4].Round(time.Millisecond))
	// The limiter's bound is 200 ms; the client's own timeout is 1 s.
	if took[4] > 800*time.Millisecond {
		t.Errorf("a write took %v with Redis hung: a Redis call ignored its deadline", took[4])
	}
	start := time.Now()
	resp, err := http.Get(r.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if d := time.Since(start); resp.StatusCode != http.StatusOK || d > 800*time.Millisecond {
		t.Errorf("/readyz with Redis hung: %d after %v, want 200 (degraded) within its 500 ms bound", resp.StatusCode, d)
	}
	if got := r.list(t); len(got.Topics) != 5 {
		t.Errorf("the writer shows %d topics, want its 5", len(got.Topics))
	}
}
