package e2e

import (
	"fmt"
	"net/http"
	"testing"
)

// TestPageRefillsOnDelete: with a first page of 3, five topics and then the
// newest three deleted on another replica. The page applies each delete's
// fill (the topic that slides onto the first page) and ends showing the two
// that are left, exactly as GET /api/topics does, without reloading.
func TestPageRefillsOnDelete(t *testing.T) {
	br := startBrowser(t)
	c := startCluster(t, clusterOptions{replicas: 2, env: []string{"SNAPSHOT_LIMIT=3"}})
	p := br.open(t, "reader", c.replicas[1].URL, tabOptions{})
	p.waitLive()
	var tokens []string
	var ids []int64
	for i := range 5 {
		tp, tok := postTopic(t, c.replicas[0].URL, fmt.Sprintf("topic %d %s", i, randomName("")))
		ids, tokens = append(ids, tp.ID), append(tokens, tok)
	}
	// Read the API again each time: the replica may not have caught up
	// with the last post when first asked.
	p.waitFor("the newest 3", liveWithin, func(s shown) bool { return sameList(s, listTopics(t, c.replicas[1].URL)) })
	for i := 4; i >= 2; i-- {
		if status, body := apiDo(t, http.MethodDelete, fmt.Sprintf("%s/api/topics/%d", c.replicas[0].URL, ids[i]), tokens[i], nil); status != http.StatusNoContent {
			t.Fatalf("delete %d: %d %s", ids[i], status, body)
		}
		want := listTopics(t, c.replicas[0].URL)
		p.waitFor(fmt.Sprintf("the page after deleting %d", ids[i]), liveWithin, func(s shown) bool { return sameList(s, want) })
	}
	if got := p.read(); len(got.Topics) != 2 {
		t.Fatalf("page shows %d topics, want the 2 left", len(got.Topics))
	}
	p.checkClean(expectedClientErrors)
}
