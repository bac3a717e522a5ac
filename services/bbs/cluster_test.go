package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/wire"
)

// TestClusterConverges is the core promise: three replicas on one Postgres
// and one Redis, SSE clients on each, creates, edits and deletes sent to
// random replicas from several writers at once. Every client ends equal to
// GET /api/topics on every replica, at the database's version, having seen
// every version exactly once and in order.
func TestClusterConverges(t *testing.T) {
	c := newCluster(t, "")
	replicas := []*replica{c.start("r1", nil), c.start("r2", nil), c.start("r3", nil)}
	var views []*view
	for i, r := range replicas {
		for j := 0; j < 2; j++ {
			views = append(views, watch(t, fmt.Sprintf("%s/client%d", r.id, j), r.URL, ""))
		}
		_ = i
	}

	const writers, opsEach = 6, 25
	var mu sync.Mutex
	var mine []wire.Created // topics written so far, shared by the writers
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for i := 0; i < opsEach; i++ {
				r := replicas[rng.IntN(len(replicas))]
				mu.Lock()
				n := len(mine)
				var target wire.Created
				if n > 0 {
					target = mine[rng.IntN(n)]
				}
				mu.Unlock()
				switch op := rng.IntN(10); {
				case op < 6 || n == 0:
					created := r.create(t, fmt.Sprintf("writer %d says %d", w, i))
					mu.Lock()
					mine = append(mine, created)
					mu.Unlock()
				case op < 9:
					// Edits race with deletes of the same topic: 200 or 404 are both right.
					code := do(t, "PATCH", fmt.Sprintf("%s/api/topics/%d", r.URL, target.Topic.ID), target.Token,
						wire.CommentBody{Comment: fmt.Sprintf("edited by %d at %d", w, i)}, nil)
					if code != http.StatusOK && code != http.StatusNotFound {
						t.Errorf("edit: %d", code)
					}
				default:
					code := do(t, "DELETE", fmt.Sprintf("%s/api/topics/%d", r.URL, target.Topic.ID), target.Token, nil, nil)
					if code != http.StatusNoContent && code != http.StatusNotFound {
						t.Errorf("delete: %d", code)
					}
				}
			}
		})
	}
	wg.Wait()

	final := replicas[0].list(t)
	for _, r := range replicas[1:] {
		for deadline := time.Now().Add(5 * time.Second); r.list(t).Version < final.Version && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The database's own answer (limit above the window forces a database read).
	var truth wire.List
	do(t, "GET", replicas[0].URL+"/api/topics?limit=500", "", nil, &truth)
	if truth.Version < final.Version {
		t.Fatalf("database at %d, replica at %d", truth.Version, final.Version)
	}
	for _, r := range replicas {
		sameList(t, r.id+" GET /api/topics vs database", r.list(t), truth)
	}
	for _, v := range views {
		v.waitVersion(truth.Version, 5*time.Second)
		sameList(t, v.name+" view vs database", v.state(), truth)
		v.check()
	}
	t.Logf("converged at version %d with %d live topics on %d clients", truth.Version, len(truth.Topics), len(views))
	if truth.Version < writers*opsEach/2 {
		t.Fatalf("only %d changes committed of %d operations", truth.Version, writers*opsEach)
	}
}
