package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
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
					a := testenv.Send(testenv.Request{Method: "PATCH", URL: topicURL(r, target.Topic.ID), Token: target.Token,
						JSON: wire.CommentBody{Comment: fmt.Sprintf("edited by %d at %d", w, i)}})
					if a.Status != http.StatusOK && a.Status != http.StatusNotFound {
						t.Errorf("edit: %v", a)
					}
				default:
					a := testenv.Send(testenv.Request{Method: "DELETE", URL: topicURL(r, target.Topic.ID), Token: target.Token})
					if a.Status != http.StatusNoContent && a.Status != http.StatusNotFound {
						t.Errorf("delete: %v", a)
					}
				}
			}
		})
	}
	wg.Wait()

	final := replicas[0].list(t)
	for _, r := range replicas[1:] {
		r.waitServes(t, final.Version, 5*time.Second)
	}
	// The database's own answer (limit above the window forces a database read).
	truth := databaseList(t, replicas[0])
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
