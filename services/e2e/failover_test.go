package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
)

// A replica dies under a page: the page says so, comes back through the
// load balancer on another replica, and shows exactly the board, including
// what changed while it was cut off.
func TestReplicaKilled(t *testing.T) {
	br := startBrowser(t)
	c := startCluster(t, clusterOptions{replicas: 3})
	lb := startBalancer(t, c.replicas)
	var tokens []string
	var seeded []apiTopic
	for i := range 4 {
		tp, tok := postTopic(t, c.replicas[i%3].URL, fmt.Sprintf("Written before the crash (%d)", i+1))
		seeded, tokens = append(seeded, tp), append(tokens, tok)
	}

	p := br.open(t, "page", lb.URL, tabOptions{})
	p.waitFor("the seeded topics", liveWithin, func(s shown) bool { return len(s.Topics) == len(seeded) })
	victim := attachedReplica(t, lb, c, "")

	// Kill it (SIGKILL: no drain, no goodbye) and change the board
	// elsewhere while the page is reconnecting.
	p.clearLog()
	killedAt := time.Now().UnixMilli()
	victim.Kill()
	if victim.Running() {
		t.Fatalf("replica %s still running after SIGKILL", victim.ID)
	}
	var other *testenv.Replica
	for _, r := range c.replicas {
		if r != victim {
			other = r
			break
		}
	}
	created, _ := postTopic(t, other.URL, "Written while the page was reconnecting")
	if status, body := apiDo(t, http.MethodPatch, fmt.Sprintf("%s/api/topics/%d", other.URL, seeded[0].ID), tokens[0],
		map[string]string{"comment": "Edited while the page was reconnecting"}); status != http.StatusOK {
		t.Fatalf("PATCH: %d %s", status, body)
	}
	if status, body := apiDo(t, http.MethodDelete, fmt.Sprintf("%s/api/topics/%d", other.URL, seeded[1].ID), tokens[1], nil); status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", status, body)
	}

	// The page comes back live and shows what GET /api/topics says.
	p.waitFor("live again, with the list GET /api/topics gives", 15*time.Second, func(s shown) bool {
		return s.State == "live" && sameList(s, listTopics(t, other.URL))
	})
	if _, ok := p.read().find(created.ID); !ok {
		t.Errorf("the topic written during the outage is missing")
	}

	// What the page went through, from the probe's log.
	var reconnectingAt, liveAt int64
	for _, s := range eval[[]shown](p, "__e2e.log") {
		switch {
		case reconnectingAt == 0 && s.State == "reconnecting":
			reconnectingAt = s.At
		case reconnectingAt != 0 && liveAt == 0 && s.State == "live":
			liveAt = s.At
		}
	}
	if reconnectingAt == 0 || liveAt == 0 {
		t.Fatalf("the page did not go reconnecting → live (reconnecting at %d, live at %d)", reconnectingAt, liveAt)
	}
	now := attachedReplica(t, lb, c, victim.ID)
	t.Logf("killed %s: the page showed reconnecting after %d ms, live again after %d ms, now on %s",
		victim.ID, reconnectingAt-killedAt, liveAt-killedAt, now.ID)

	// Writing from the page still works: the balancer skips the dead replica.
	text := "Posted from the page after the failover"
	p.post(text)
	p.waitFor("its own post", liveWithin, func(s shown) bool { _, ok := s.withComment(text); return ok })
	p.waitFor("the list GET /api/topics gives", liveWithin, func(s shown) bool {
		return sameList(s, listTopics(t, lb.URL))
	})
	// The browser reports the cut stream as a failed load; nothing else.
	p.checkClean(func(pr problem) bool { return pr.source == "network" })
}

// attachedReplica waits until the balancer holds exactly one open stream,
// on a replica other than not, and returns that replica.
func attachedReplica(t *testing.T, lb *balancer, c *cluster, not string) *testenv.Replica {
	t.Helper()
	var found *testenv.Replica
	testenv.Eventually(t, 10*time.Second, func() error {
		var on []string
		total := int64(0)
		for id, n := range lb.streams() {
			total += n
			if n > 0 {
				on = append(on, id)
			}
		}
		if total == 1 && on[0] != not {
			for _, r := range c.replicas {
				if r.ID == on[0] {
					found = r
					return nil
				}
			}
		}
		return fmt.Errorf("the balancer does not hold exactly one stream (off %q): %v", not, lb.streams())
	})
	return found
}
