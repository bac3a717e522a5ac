package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/store"
	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/bbsboard/bbs/pkg/wire"
)

// These tests hold the cluster to docs/ARCHITECTURE.md's "When things fail": Redis
// dying and coming back, notices lost with no disconnect at all, Postgres
// unreachable, and many writers racing on the same rows. Durations are
// measured and logged, never asserted, except as bounds on hanging.

// startReplicas starts one replica per id with env.
func startReplicas(c *cluster, env map[string]string, ids ...string) []*replica {
	var rs []*replica
	for _, id := range ids {
		rs = append(rs, c.start(id, env))
	}
	return rs
}

// tryCreate posts a topic; created is zero unless the answer was 201.
func tryCreate(baseURL, comment string) (created wire.Created, o testenv.Answer) {
	o = testenv.Send(testenv.Request{Method: "POST", URL: baseURL + "/api/topics", JSON: wire.CommentBody{Comment: comment}})
	if o.Status == http.StatusCreated {
		if err := json.Unmarshal(o.Body, &created); err != nil {
			o.Err = err
		}
	}
	return created, o
}

func topicURL(r *replica, id int64) string { return fmt.Sprintf("%s/api/topics/%d", r.URL, id) }

// databaseList is the board as the database has it: a limit above the
// snapshot window makes the replica read Postgres instead of its memory.
func databaseList(t testing.TB, r *replica) wire.List {
	t.Helper()
	a := testenv.Do(t, testenv.Request{Method: "GET", URL: r.URL + "/api/topics?limit=500"})
	if a.Status != http.StatusOK {
		t.Fatalf("%s GET /api/topics?limit=500: %v", r.id, a)
	}
	var l wire.List
	decodeAnswer(t, a, &l)
	return l
}

// readiness is the body of /readyz on the internal listener (the public
// one says only the status).
type readiness struct {
	Status       string            `json:"status"`
	Dependencies map[string]string `json:"dependencies"`
}

func readinessOf(t testing.TB, r *replica) (int, readiness) {
	t.Helper()
	o := testenv.Send(testenv.Request{Method: "GET", URL: r.Internal + "/readyz"})
	if o.Err != nil {
		t.Fatalf("%s /readyz: %v", r.id, o.Err)
	}
	var rd readiness
	_ = json.Unmarshal(o.Body, &rd)
	return o.Status, rd
}

// expectDegraded checks that r stays in the load balancer (200) while
// naming dep as down, and the others as ok.
func expectDegraded(t testing.TB, r *replica, dep string) {
	t.Helper()
	status, rd := readinessOf(t, r)
	if status != http.StatusOK || rd.Status != "degraded" || !strings.HasPrefix(rd.Dependencies[dep], "down") {
		t.Errorf("%s /readyz with %s down: %d %+v, want 200 degraded naming %s", r.id, dep, status, rd, dep)
	}
	for name, state := range rd.Dependencies {
		if name != dep && state != "ok" {
			t.Errorf("%s /readyz: %s is %q, only %s is down", r.id, name, state, dep)
		}
	}
}

// watchEach opens perReplica views on every replica.
func watchEach(t testing.TB, replicas []*replica, perReplica int) []*view {
	var views []*view
	for _, r := range replicas {
		for i := 0; i < perReplica; i++ {
			views = append(views, watch(t, fmt.Sprintf("%s/view%d", r.id, i), r.URL, ""))
		}
	}
	return views
}

// waitViews waits until every view is at version want at least and
// returns how long that took.
func waitViews(views []*view, want int64, within time.Duration) time.Duration {
	start := time.Now()
	for _, v := range views {
		v.waitVersion(want, within-time.Since(start))
	}
	return time.Since(start)
}

// streamOpen reports whether a view's stream is still connected.
func streamOpen(v *view) bool {
	v.mu.Lock()
	ended := v.ended
	v.mu.Unlock()
	select {
	case <-ended:
		return false
	default:
		return true
	}
}

// defaultWindow is SNAPSHOT_LIMIT's default.
const defaultWindow = 100

// expectConverged is the end state every fault test must reach: each
// replica's GET /api/topics and each view equal to the database, with no
// protocol problem (a version skipped, repeated or gone backwards) seen by
// any view on the way. It returns the database's list.
func expectConverged(t testing.TB, replicas []*replica, views []*view, within time.Duration) wire.List {
	t.Helper()
	truth := databaseList(t, replicas[0])
	// Replicas and streams hold the first page only (SNAPSHOT_LIMIT, the
	// default in these tests).
	truth.Topics = truth.Topics[:min(len(truth.Topics), defaultWindow)]
	for _, r := range replicas {
		r.waitServes(t, truth.Version, within)
		sameList(t, r.id+" GET /api/topics vs database", r.list(t), truth)
	}
	waitViews(views, truth.Version, within)
	for _, v := range views {
		sameList(t, v.name+" vs database", v.state(), truth)
		v.check()
	}
	return truth
}

// hasTopic reports whether a view shows topic id.
func hasTopic(v *view, id int64) bool {
	return slices.ContainsFunc(v.state().Topics, func(tp wire.Topic) bool { return tp.ID == id })
}

// steadyTraffic is a steady stream of writes to random replicas from one
// goroutine: mostly creates, some edits of topics it created.
type steadyTraffic struct {
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	created  []wire.Created
	failures []string
	writes   int
	slowest  time.Duration
}

func startTraffic(replicas []*replica, every time.Duration, label string) *steadyTraffic {
	tr := &steadyTraffic{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		rng := rand.New(rand.NewPCG(7, 7))
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-tr.stop:
				return
			case <-tick.C:
			}
			r := replicas[rng.IntN(len(replicas))]
			tr.mu.Lock()
			mine := slices.Clone(tr.created)
			tr.mu.Unlock()
			var o testenv.Answer
			if len(mine) > 0 && rng.IntN(5) == 0 {
				target := mine[rng.IntN(len(mine))]
				o = testenv.Send(testenv.Request{Method: "PATCH", URL: topicURL(r, target.Topic.ID), Token: target.Token, JSON: wire.CommentBody{Comment: fmt.Sprintf("%s edit %d", label, i)}})
				if o.Status != http.StatusOK {
					tr.fail(fmt.Sprintf("PATCH on %s: %v", r.id, o))
				}
			} else {
				var c wire.Created
				c, o = tryCreate(r.URL, fmt.Sprintf("%s %d", label, i))
				if o.Status != http.StatusCreated {
					tr.fail(fmt.Sprintf("POST on %s: %v", r.id, o))
				} else {
					tr.mu.Lock()
					tr.created = append(tr.created, c)
					tr.mu.Unlock()
				}
			}
			tr.mu.Lock()
			tr.writes++
			tr.slowest = max(tr.slowest, o.Took)
			tr.mu.Unlock()
		}
	}()
	return tr
}

func (tr *steadyTraffic) fail(s string) {
	tr.mu.Lock()
	tr.failures = append(tr.failures, s)
	tr.mu.Unlock()
}

// count is how many writes were sent so far.
func (tr *steadyTraffic) count() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.writes
}

// waitCount waits until n writes were sent.
func (tr *steadyTraffic) waitCount(t testing.TB, n int) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := tr.count(); got < n {
			return fmt.Errorf("%d writes sent, want %d", got, n)
		}
		return nil
	})
}

// end stops the traffic, fails the test for every write that was not
// answered with success, and returns the slowest answer.
func (tr *steadyTraffic) end(t testing.TB) time.Duration {
	t.Helper()
	close(tr.stop)
	<-tr.done
	for _, f := range tr.failures {
		t.Errorf("write during traffic: %s", f)
	}
	return tr.slowest
}

// TestRedisDiesAndComesBack: Redis (pub/sub, cache and rate limiter) is
// SIGKILLed in the middle of steady traffic and restarted empty. While it
// is down, writes still commit and answer 201, streams stay open, the
// writing replica's own clients see its change, the other replicas keep up
// through their periodic version check, and /readyz says degraded (200)
// naming redis. Once it is back, every replica and client converges on the
// database, the outage writes included, and notices flow on pub/sub again.
func TestRedisDiesAndComesBack(t *testing.T) {
	rs := testenv.StartRedis(t)
	c := newCluster(t, rs.URL())
	env := map[string]string{"VERSION_CHECK": "1s"}
	replicas := startReplicas(c, env, "r1", "r2", "r3")
	r1 := replicas[0]
	views := watchEach(t, replicas, 2)
	r1Views := views[:2]

	tr := startTraffic(replicas, 20*time.Millisecond, "steady")
	tr.waitCount(t, 15)
	rs.Stop()
	killedAt, writesBefore := time.Now(), tr.count()
	time.Sleep(300 * time.Millisecond) // the replicas notice: connections fail, publishes error

	// In the middle of the traffic, a write on r1 usually comes after
	// writes on r2 and r3 whose notices r1 never got: r1 holds its own
	// change until it has fetched those from the change log (version
	// order), so its clients see it after that short wait.
	probe, o := tryCreate(r1.URL, "written during traffic while redis is down")
	if o.Status != http.StatusCreated {
		t.Fatalf("POST with redis down: %v, want 201", o)
	}
	shown := waitShown(t, r1Views, probe.Topic.ID, 5*time.Second)
	t.Logf("redis down, during traffic: the writer's own views showed its write %d ms after the 201", shown.Milliseconds())

	// The other replicas' clients keep receiving too, through each
	// replica's periodic check of the database's version.
	probeVersion := r1.list(t).Version
	lag := waitViews(views, probeVersion, 10*time.Second)
	t.Logf("redis down: every view on every replica at version %d %d ms after the 201 (VERSION_CHECK=1s)", probeVersion, lag.Milliseconds())

	for _, r := range replicas {
		expectDegraded(t, r, "redis")
		if up := r.metric(t, `bbs_dependency_up{dependency="redis"}`); up != 0 {
			t.Errorf("%s: bbs_dependency_up{redis} = %v with redis down", r.id, up)
		}
	}
	if n := r1.metric(t, "bbs_publish_errors_total"); n == 0 {
		t.Errorf("r1: no publish error counted while redis was down")
	}
	skipped := 0.0
	for _, r := range replicas {
		skipped += r.metric(t, "bbs_rate_limit_skipped_total")
	}
	if skipped == 0 {
		t.Errorf("no write counted in bbs_rate_limit_skipped_total while redis (the limiter's store) was down")
	}

	tr.waitCount(t, writesBefore+20)
	slowest := tr.end(t)
	t.Logf("redis down: slowest write of the steady traffic (before and during the outage) took %d ms", slowest.Milliseconds())

	// Quiet now: once r1 is at the database's version, its own next write
	// follows on directly, and it must show it before answering, Redis or
	// not (its streams are local).
	waitViews(views, databaseList(t, r1).Version, 10*time.Second)
	quiet, o := tryCreate(r1.URL, "written while redis is down and the board is quiet")
	if o.Status != http.StatusCreated {
		t.Fatalf("POST with redis down: %v, want 201", o)
	}
	if !slices.ContainsFunc(r1.list(t).Topics, func(tp wire.Topic) bool { return tp.ID == quiet.Topic.ID }) {
		t.Errorf("r1 answered 201 but its own list lacks topic %d", quiet.Topic.ID)
	}
	shown = waitShown(t, r1Views, quiet.Topic.ID, 5*time.Second)
	t.Logf("redis down, quiet board: the writer's own views showed its write %d ms after the 201", shown.Milliseconds())

	// The last outage writes land on every replica at once, just before
	// Redis returns, so that the others have (most likely) not seen them.
	var last sync.WaitGroup
	for i := 0; i < 6; i++ {
		last.Go(func() {
			if _, o := tryCreate(replicas[i%len(replicas)].URL, fmt.Sprintf("last outage write %d", i)); o.Status != http.StatusCreated {
				t.Errorf("POST with redis down: %v", o)
			}
		})
	}
	last.Wait()
	for _, v := range views {
		if !streamOpen(v) {
			t.Errorf("%s: stream closed during the redis outage", v.name)
		}
	}
	outageWrites := tr.count() - writesBefore + 2 + 6 // the traffic's, the two probes, the last ones
	outage := time.Since(killedAt)

	// How far behind the clients are when Redis returns: the figure below
	// is only meaningful if some are.
	atRestart := databaseList(t, r1).Version
	behind := 0
	for _, v := range views {
		if v.state().Version < atRestart {
			behind++
		}
	}

	restartAt := time.Now()
	rs.Start()
	accepting := time.Since(restartAt)
	truth := databaseList(t, r1)
	waitViews(views, truth.Version, 20*time.Second)
	converged := time.Since(restartAt)
	t.Logf("redis outage convergence: %d ms (from rs.Start(); redis-server accepting after %d ms; %d of %d views behind at restart; outage lasted %v with %d writes; database at version %d)",
		converged.Milliseconds(), accepting.Milliseconds(), behind, len(views), outage.Round(time.Millisecond), outageWrites, truth.Version)
	expectConverged(t, replicas, views, 20*time.Second)

	// Pub/sub carries notices again: writes on r1 are published (not only
	// found by the others' periodic check). go-redis keeps failing fast for
	// up to a second after its dials failed, so allow a few writes.
	published := r1.metric(t, "bbs_events_published_total")
	var republished time.Duration
	for i := 0; republished == 0; i++ {
		if _, o := tryCreate(r1.URL, fmt.Sprintf("after redis is back %d", i)); o.Status != http.StatusCreated {
			t.Fatalf("POST after redis is back: %v", o)
		}
		time.Sleep(50 * time.Millisecond)
		switch {
		case r1.metric(t, "bbs_events_published_total") > published:
			republished = time.Since(restartAt)
		case time.Since(restartAt) > 10*time.Second:
			t.Fatalf("r1: nothing published on redis 10s after it came back")
		}
	}
	t.Logf("redis back: r1 publishing again %d ms after rs.Start()", republished.Milliseconds())
	expectConverged(t, replicas, views, 10*time.Second)
	// Readiness turns ok again by itself (go-redis retries its failed
	// dials once a second, so it can lag the restart by that much).
	for _, r := range replicas {
		testenv.Eventually(t, 5*time.Second, func() error {
			if status, rd := readinessOf(t, r); status != http.StatusOK || rd.Status != "ok" {
				return fmt.Errorf("%s /readyz after redis is back: %d %+v, want 200 ok", r.id, status, rd)
			}
			return nil
		})
	}
}

// TestLostNoticesFoundByPeriodicCheck: changes committed with no notice at
// all, and no disconnect to hint at it, as when a replica dies between
// COMMIT and PUBLISH. The test writes them straight into the database
// through a store of its own and never publishes; every replica must find
// them with its periodic version check and bring its clients along.
func TestLostNoticesFoundByPeriodicCheck(t *testing.T) {
	c := newCluster(t, "")
	env := map[string]string{"VERSION_CHECK": "300ms"}
	replicas := startReplicas(c, env, "r1", "r2", "r3")
	views := watchEach(t, replicas, 2)
	replicas[0].create(t, "announced")
	waitViews(views, 1, 5*time.Second)

	ctx := testenv.Context(t, 30*time.Second)
	silent, err := store.Open(ctx, c.base["DATABASE_URL"], slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	writeSilently := func(comment string) int64 {
		t.Helper()
		_, hash := topic.NewToken()
		_, changes, err := silent.Create(ctx, comment, hash)
		if err != nil || len(changes) != 1 {
			t.Fatalf("silent create: %v (%d changes)", err, len(changes))
		}
		return changes[0].Version // committed, and never published
	}

	var took []time.Duration
	for i := 0; i < 5; i++ {
		v := writeSilently(fmt.Sprintf("silent %d", i))
		took = append(took, waitViews(views, v, 10*time.Second))
	}
	// Several silent writes at once: one catch-up brings them all, in order.
	var last int64
	for i := 0; i < 5; i++ {
		last = writeSilently(fmt.Sprintf("silent burst %d", i))
	}
	took = append(took, waitViews(views, last, 10*time.Second))
	// A silent write right before an announced one: the announced notice
	// arrives first, with a hole before it; nobody may apply it out of order.
	writeSilently("silent, then announced")
	replicas[1].create(t, "announced after a silent one")

	truth := expectConverged(t, replicas, views, 10*time.Second)
	if truth.Version != 13 {
		t.Errorf("database at version %d, want 13", truth.Version)
	}
	for _, r := range replicas {
		if n := r.metric(t, `bbs_resyncs_total{reason="check"}`); n == 0 {
			t.Errorf("%s: no catch-up by the periodic check counted", r.id)
		}
	}
	slices.Sort(took)
	t.Logf("lost notices (VERSION_CHECK=300ms): every view caught up in %d..%d ms (median %d ms) over %d rounds",
		took[0].Milliseconds(), took[len(took)-1].Milliseconds(), took[len(took)/2].Milliseconds(), len(took))
}

// TestPostgresUnreachable: Postgres is cut off from the replicas (a proxy
// in between closes every connection and refuses new ones). Writes answer
// 503 "unavailable" quickly and write nothing; reads of the first page and
// the streams go on from memory; /readyz says degraded naming the
// database. When the proxy lets traffic through again, writes work without
// restarting anything and every client converges.
func TestPostgresUnreachable(t *testing.T) {
	c := newCluster(t, "") // migrates through the real address
	proxy, proxied := databaseProxy(t, c)
	env := map[string]string{
		"DATABASE_URL":  proxied,
		"VERSION_CHECK": "300ms",
		"SSE_HEARTBEAT": "200ms",
	}
	replicas := startReplicas(c, env, "r1", "r2", "r3")
	views := watchEach(t, replicas, 2)

	var topics []wire.Created
	for i := 0; i < 6; i++ {
		topics = append(topics, replicas[i%3].create(t, fmt.Sprintf("before the outage %d", i)))
	}
	before := expectConverged(t, replicas, views, 5*time.Second)
	committed := before.Version

	proxy.Cut()
	cutAt := time.Now()

	// Every write is refused with 503 "unavailable", promptly.
	var slowest time.Duration
	refused := func(what string, o testenv.Answer) {
		t.Helper()
		slowest = max(slowest, o.Took)
		if o.Err != nil || o.Status != http.StatusServiceUnavailable || o.ErrCode != "unavailable" {
			t.Errorf("%s with postgres down: %v, want 503 unavailable", what, o)
		}
		if o.Took > 5*time.Second {
			t.Errorf("%s with postgres down took %v to answer", what, o.Took)
		}
	}
	for round := 0; round < 2; round++ {
		for i, r := range replicas {
			_, o := tryCreate(r.URL, fmt.Sprintf("failed create %d/%d", round, i))
			refused("POST on "+r.id, o)
			edit := topics[i]
			refused("PATCH on "+r.id, testenv.Send(testenv.Request{Method: "PATCH", URL: topicURL(r, edit.Topic.ID), Token: edit.Token, JSON: wire.CommentBody{Comment: "failed edit"}}))
			del := topics[3+i]
			refused("DELETE on "+r.id, testenv.Send(testenv.Request{Method: "DELETE", URL: topicURL(r, del.Topic.ID), Token: del.Token}))
		}
	}
	t.Logf("postgres down: writes refused with 503 within %d ms at worst", slowest.Milliseconds())

	// Reads of the first page still come from memory; pages beyond it need
	// the database and say so with a 503, not a 500.
	for _, r := range replicas {
		sameList(t, r.id+" GET /api/topics with postgres down", r.list(t), before)
		if o := testenv.Send(testenv.Request{Method: "GET", URL: r.URL + "/api/topics?limit=500"}); o.Status != http.StatusServiceUnavailable || o.ErrCode != "unavailable" {
			t.Errorf("%s GET ?limit=500 with postgres down: %v, want 503 unavailable", r.id, o)
		}
		expectDegraded(t, r, "database")
	}
	// Streams stay open through several version checks and heartbeats, and
	// new ones still open, from memory.
	time.Sleep(time.Second)
	for _, v := range views {
		if !streamOpen(v) {
			t.Errorf("%s: stream closed with postgres down", v.name)
		}
	}
	for _, r := range replicas {
		late := watch(t, r.id+"/opened during the outage", r.URL, "")
		late.waitVersion(committed, 5*time.Second)
		sameList(t, late.name, late.state(), before)
		views = append(views, late)
	}
	t.Logf("postgres was unreachable for %v", time.Since(cutAt).Round(time.Millisecond))

	proxy.Restore()
	restoredAt := time.Now()
	// Writes work again at once, through the same replicas.
	for i, r := range replicas {
		if _, o := tryCreate(r.URL, fmt.Sprintf("after the outage %d", i)); o.Status != http.StatusCreated {
			t.Errorf("first POST on %s after postgres is back: %v, want 201", r.id, o)
		}
	}
	edit, del := topics[0], topics[3]
	if o := testenv.Send(testenv.Request{Method: "PATCH", URL: topicURL(replicas[1], edit.Topic.ID), Token: edit.Token, JSON: wire.CommentBody{Comment: "edited after the outage"}}); o.Status != http.StatusOK {
		t.Errorf("PATCH after postgres is back: %v", o)
	}
	if o := testenv.Send(testenv.Request{Method: "DELETE", URL: topicURL(replicas[2], del.Topic.ID), Token: del.Token}); o.Status != http.StatusNoContent {
		t.Errorf("DELETE after postgres is back: %v", o)
	}
	committed += 5
	truth := expectConverged(t, replicas, views, 10*time.Second)
	t.Logf("postgres back: writes and every view converged in %d ms", time.Since(restoredAt).Milliseconds())

	// Nothing half-written: exactly the successful writes have versions,
	// rows and change-log entries; the refused ones left no trace.
	if truth.Version != committed {
		t.Errorf("database at version %d, want %d (one per successful write)", truth.Version, committed)
	}
	ctx := testenv.Context(t, 10*time.Second)
	direct, err := store.Open(ctx, c.base["DATABASE_URL"], slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	var rows, logged, failedRows int64
	db := direct.DB().WithContext(ctx)
	if err := db.Table("topics").Count(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Table("topic_changes").Count(&logged).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Table("topics").Where("comment LIKE ?", "failed%").Count(&failedRows).Error; err != nil {
		t.Fatal(err)
	}
	if rows != 9 || logged != committed || failedRows != 0 {
		t.Errorf("database holds %d topic rows (want 9), %d change-log entries (want %d), %d rows from refused writes (want 0)",
			rows, logged, committed, failedRows)
	}
	for _, tp := range truth.Topics {
		if strings.HasPrefix(tp.Comment, "failed") {
			t.Errorf("topic %d shows a refused write: %q", tp.ID, tp.Comment)
		}
	}
	for _, id := range []int64{topics[4].Topic.ID, topics[5].Topic.ID} {
		if !slices.ContainsFunc(truth.Topics, func(tp wire.Topic) bool { return tp.ID == id }) {
			t.Errorf("topic %d was deleted by a refused DELETE", id)
		}
	}
}

// TestPostgresUnreachableHung: Postgres stops answering without closing
// anything (a network partition, a frozen VM: the proxy holds every byte).
// This is the outage where only the server's own timeouts help. Writes
// must still be refused with 503 "unavailable" within seconds, not hang
// for as long as the client cares to wait; reads of the first page, the
// streams and /readyz go on; after the partition heals, writes work again
// and nothing refused was written.
func TestPostgresUnreachableHung(t *testing.T) {
	c := newCluster(t, "")
	proxy, proxied := databaseProxy(t, c)
	env := map[string]string{"DATABASE_URL": proxied, "VERSION_CHECK": "300ms"}
	replicas := startReplicas(c, env, "r1", "r2")
	views := watchEach(t, replicas, 1)
	first, second := replicas[0].create(t, "before the partition"), replicas[1].create(t, "also before")
	before := expectConverged(t, replicas, views, 5*time.Second)

	proxy.Freeze()
	// The three writes go at once, each bounded by a client that gives up
	// after 10s: a server without its own deadline is still waiting then.
	const patience, bound = 10 * time.Second, 5 * time.Second
	impatient := &http.Client{Timeout: patience}

	writes := map[string]func() testenv.Answer{
		"POST": func() testenv.Answer {
			return testenv.Send(testenv.Request{Method: "POST", URL: replicas[0].URL + "/api/topics", JSON: wire.CommentBody{Comment: "refused during the partition"}, Client: impatient})
		},
		"PATCH": func() testenv.Answer {
			return testenv.Send(testenv.Request{Method: "PATCH", URL: topicURL(replicas[1], first.Topic.ID), Token: first.Token, JSON: wire.CommentBody{Comment: "refused edit"}, Client: impatient})
		},
		"DELETE": func() testenv.Answer {
			return testenv.Send(testenv.Request{Method: "DELETE", URL: topicURL(replicas[0], second.Topic.ID), Token: second.Token, Client: impatient})
		},
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[string]testenv.Answer{}
	for name, write := range writes {
		wg.Go(func() {
			o := write()
			mu.Lock()
			answers[name] = o
			mu.Unlock()
		})
	}
	// Meanwhile reads, streams and readiness carry on from memory.
	for _, r := range replicas {
		sameList(t, r.id+" GET /api/topics with postgres hung", r.list(t), before)
		expectDegraded(t, r, "database")
	}
	wg.Wait()
	for name, o := range answers {
		t.Logf("postgres hung: %s answered %v", name, o)
		if o.Err != nil || o.Status != http.StatusServiceUnavailable || o.ErrCode != "unavailable" || o.Took > bound {
			t.Errorf("%s with postgres hung: %v; want 503 unavailable within %v", name, o, bound)
		}
	}
	for _, v := range views {
		if !streamOpen(v) {
			t.Errorf("%s: stream closed with postgres hung", v.name)
		}
	}

	proxy.Restore()
	if _, o := tryCreate(replicas[1].URL, "after the partition"); o.Status != http.StatusCreated {
		t.Errorf("POST after the partition healed: %v, want 201", o)
	}
	truth := expectConverged(t, replicas, views, 10*time.Second)
	if truth.Version != 3 {
		t.Errorf("database at version %d, want 3: only the successful writes may have landed", truth.Version)
	}
	for _, tp := range truth.Topics {
		if strings.HasPrefix(tp.Comment, "refused") {
			t.Errorf("topic %d shows a refused write: %q", tp.ID, tp.Comment)
		}
	}
}

// TestConcurrentRacingWriters: writers on every replica edit and delete
// the same three topics at once, with the topic's token or the admin's; a
// writer whose delete won puts a new topic in that slot, so the race goes
// on. Every success is exactly one version, so the database's version
// equals the number of successes; every replica and every client ends
// equal to the database, and no client ever saw a version skipped or out
// of order.
func TestConcurrentRacingWriters(t *testing.T) {
	c := newCluster(t, "")
	replicas := startReplicas(c, nil, "r1", "r2", "r3")
	views := watchEach(t, replicas, 2)

	var mu sync.Mutex
	var slots [3]wire.Created // the contested topics
	for i := range slots {
		slots[i] = replicas[i].create(t, fmt.Sprintf("contested %d", i))
	}
	var edits, deletes, creates, lost atomic.Int64
	creates.Add(int64(len(slots)))

	const writers, opsEach = 12, 30
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for i := 0; i < opsEach; i++ {
				r := replicas[(w+i)%len(replicas)]
				k := rng.IntN(len(slots))
				mu.Lock()
				target := slots[k]
				mu.Unlock()
				token := target.Token
				if rng.IntN(2) == 0 {
					token = "admin-secret"
				}
				if rng.IntN(10) < 8 {
					o := testenv.Send(testenv.Request{Method: "PATCH", URL: topicURL(r, target.Topic.ID), Token: token, JSON: wire.CommentBody{Comment: fmt.Sprintf("w%d op%d", w, i)}})
					switch o.Status {
					case http.StatusOK:
						edits.Add(1)
					case http.StatusNotFound: // lost the race to a delete
						lost.Add(1)
					default:
						t.Errorf("w%d: PATCH %d on %s: %v", w, target.Topic.ID, r.id, o)
					}
					continue
				}
				o := testenv.Send(testenv.Request{Method: "DELETE", URL: topicURL(r, target.Topic.ID), Token: token})
				switch o.Status {
				case http.StatusNoContent:
					deletes.Add(1)
				case http.StatusNotFound:
					lost.Add(1)
					continue
				default:
					t.Errorf("w%d: DELETE %d on %s: %v", w, target.Topic.ID, r.id, o)
					continue
				}
				// This writer's delete won: it refills the slot.
				created, o := tryCreate(r.URL, fmt.Sprintf("w%d refill %d", w, i))
				if o.Status != http.StatusCreated {
					t.Errorf("w%d: POST on %s: %v", w, r.id, o)
					continue
				}
				creates.Add(1)
				mu.Lock()
				if slots[k].Topic.ID == target.Topic.ID {
					slots[k] = created
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	truth := expectConverged(t, replicas, views, 10*time.Second)
	total := edits.Load() + deletes.Load() + creates.Load()
	if truth.Version != total {
		t.Errorf("database at version %d after %d successful writes: each success must be exactly one version", truth.Version, total)
	}
	t.Logf("%d writers on 3 topics: %d edits, %d deletes, %d creates succeeded, %d lost the race to a delete (404); %d clients converged at version %d",
		writers, edits.Load(), deletes.Load(), creates.Load(), lost.Load(), len(views), truth.Version)
}

// waitShown waits until every view shows topic id and returns how long
// that took from now; it fails the test after within.
func waitShown(t *testing.T, views []*view, id int64, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for _, v := range views {
		for !hasTopic(v, id) {
			if time.Since(start) > within {
				t.Fatalf("%s: topic %d not shown %v after its 201", v.name, id, within)
			}
			select {
			case <-v.changed:
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return time.Since(start)
}

// databaseProxy puts a TCP proxy between the replicas and the cluster's
// database and returns it with the database URL through it.
func databaseProxy(t *testing.T, c *cluster) (*testenv.Proxy, string) {
	t.Helper()
	u, err := url.Parse(c.base["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartProxy(t, u.Host)
	u.Host = proxy.Addr()
	return proxy, u.String()
}
