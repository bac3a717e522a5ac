package main

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/wire"
)

// metric reads one sample from a replica's /metrics, on its internal
// listener (never served on the public port).
func (r *replica) metric(t testing.TB, name string) float64 {
	t.Helper()
	if r.Internal == "" {
		t.Fatalf("%s: no internal listener known: metrics are served there only", r.id)
	}
	resp, err := http.Get(r.Internal + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("%s: no metric %s", r.id, name)
	return 0
}

// TestReadsAndFanOutCostNoQueries: with the cache warm, GET /api/topics
// and opening streams read nothing from the database, and a write costs
// the other replicas no database query at all, however many streams they
// hold: the notice carries the change.
func TestReadsAndFanOutCostNoQueries(t *testing.T) {
	c := newCluster(t, "")
	quiet := map[string]string{"VERSION_CHECK": "1h"} // no periodic reads during the count
	writer, r2, r3 := c.start("writer", quiet), c.start("r2", quiet), c.start("r3", quiet)
	writer.create(t, "warm")
	for _, r := range []*replica{r2, r3} {
		r.waitServes(t, 1, 5*time.Second)
	}

	before := map[string]float64{}
	for _, r := range []*replica{writer, r2, r3} {
		before[r.id] = r.metric(t, "bbs_db_queries_total")
	}
	var views []*view
	for i := 0; i < 20; i++ {
		for _, r := range []*replica{writer, r2, r3} {
			r.list(t)
			if i < 5 {
				views = append(views, watch(t, fmt.Sprintf("%s/%d", r.id, i), r.URL, ""))
			}
		}
	}
	for _, r := range []*replica{writer, r2, r3} {
		if d := r.metric(t, "bbs_db_queries_total") - before[r.id]; d != 0 {
			t.Errorf("%s: %v database queries for 20 reads and 5 streams, want 0", r.id, d)
		}
	}

	const writes = 10
	writerBefore := writer.metric(t, "bbs_db_queries_total")
	for i := 0; i < writes; i++ {
		writer.create(t, fmt.Sprintf("write %d", i))
	}
	for _, v := range views {
		v.waitVersion(1+writes, 5*time.Second)
		v.check()
	}
	for _, r := range []*replica{r2, r3} {
		if d := r.metric(t, "bbs_db_queries_total") - before[r.id]; d != 0 {
			t.Errorf("%s: %v database queries while %d writes fanned out, want 0", r.id, d, writes)
		}
	}
	perWrite := (writer.metric(t, "bbs_db_queries_total") - writerBefore) / writes
	t.Logf("writer: %.1f SQL statements per create", perWrite)
	if perWrite != 2 {
		t.Errorf("writer: %.1f statements per create, want 2 (insert; version and change log)", perWrite)
	}
	if hits := r2.metric(t, `bbs_list_reads_total{source="window"}`); hits < 20 {
		t.Errorf("r2: %v first pages served from the in-memory window, want >= 20", hits)
	}
}

// TestNoTokenNoDatabase: an edit or delete without a token is answered 401
// before the database is asked, so nobody can take a topic's row lock
// without one. Before, PATCH read the row FOR UPDATE first.
func TestNoTokenNoDatabase(t *testing.T) {
	c := newCluster(t, "")
	r := c.start("r1", nil)
	created := r.create(t, "locked by nobody")
	before := r.metric(t, "bbs_db_queries_total")
	for _, method := range []string{"PATCH", "DELETE"} {
		o := testenv.Send(testenv.Request{Method: method, URL: topicURL(r, created.Topic.ID), JSON: wire.CommentBody{Comment: "x"}})
		if o.Status != http.StatusUnauthorized {
			t.Fatalf("%s without a token: %v", method, o)
		}
	}
	if n := r.metric(t, "bbs_db_queries_total") - before; n != 0 {
		t.Fatalf("%v SQL statements for two requests without a token, want 0", n)
	}
}
