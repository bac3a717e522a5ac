package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/wire"
	"gorm.io/gorm"
)

// The tests here hold group commit (pkg/store/batch.go) to what one write
// per transaction promised: versions gap-free in commit order, every 201
// in the database exactly once, nothing half-written, every writer
// answered, whatever fails.

// acked is what the writers were told, collected from many goroutines.
type acked struct {
	mu      sync.Mutex
	created map[string]int64 // comment → topic id, for every 201
	refused map[string]int   // comment → status, for every answered refusal
	unknown []string         // comments whose request got no answer
}

func newAcked() *acked {
	return &acked{created: map[string]int64{}, refused: map[string]int{}}
}

func (a *acked) record(comment string, created wire.Created, o testenv.Answer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case o.Status == http.StatusCreated:
		a.created[comment] = created.Topic.ID
	case o.Err != nil:
		a.unknown = append(a.unknown, comment)
	default:
		a.refused[comment] = o.Status
	}
}

// writeConcurrently has writers goroutines each create perWriter topics
// with comments prefix-w-i, through targets in turn.
func writeConcurrently(targets []string, writers, perWriter int, comment func(w, i int) string, a *acked) {
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				c := comment(w, i)
				created, o := tryCreate(targets[(w+i)%len(targets)], c)
				a.record(c, created, o)
			}
		})
	}
	wg.Wait()
}

// execAll runs statements on the database, as an operator would.
func execAll(t *testing.T, db *gorm.DB, statements ...string) {
	t.Helper()
	for _, q := range statements {
		if err := db.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
}

// boardRows is the database's own account: every topic row (deleted or
// not) and every change-log entry.
type boardRows struct {
	topics   map[string][]int64 // comment → ids of the rows holding it
	versions []int64            // the log's versions, ascending
	logged   map[int64]int      // topic id → its "created" entries
	head     int64
}

func readBoard(t *testing.T, db *gorm.DB) boardRows {
	t.Helper()
	var topics []struct {
		ID      int64
		Comment string
	}
	if err := db.Raw("SELECT id, comment FROM topics").Scan(&topics).Error; err != nil {
		t.Fatal(err)
	}
	var log []struct {
		Version int64
		Kind    string
		TopicID int64
	}
	if err := db.Raw("SELECT version, kind, topic_id FROM topic_changes ORDER BY version").Scan(&log).Error; err != nil {
		t.Fatal(err)
	}
	b := boardRows{topics: map[string][]int64{}, logged: map[int64]int{}}
	if err := db.Raw("SELECT v FROM bbs_version WHERE id = 1").Scan(&b.head).Error; err != nil {
		t.Fatal(err)
	}
	for _, r := range topics {
		b.topics[r.Comment] = append(b.topics[r.Comment], r.ID)
	}
	for _, e := range log {
		b.versions = append(b.versions, e.Version)
		if e.Kind == "topic.created" { // the change log's spelling
			b.logged[e.TopicID]++
		}
	}
	return b
}

// expectWhole checks the database against the answers: versions 1..head
// with no hole, every topic row created by exactly one logged change
// (nothing half-written), every 201's topic there exactly once under its
// id, every refused write absent, and no comment stored twice (no write
// applied twice, answered or not).
func expectWhole(t *testing.T, b boardRows, a *acked) {
	t.Helper()
	for i, v := range b.versions {
		if v != int64(i+1) {
			t.Fatalf("change log versions have a hole or repeat at %d: got %d (head %d)", i+1, v, b.head)
		}
	}
	if int64(len(b.versions)) != b.head {
		t.Errorf("change log holds %d versions, the version row says %d", len(b.versions), b.head)
	}
	for comment, ids := range b.topics {
		if len(ids) != 1 {
			t.Errorf("%q stored %d times (ids %v)", comment, len(ids), ids)
		}
		for _, id := range ids {
			if b.logged[id] != 1 {
				t.Errorf("topic %d (%q) has %d created entries in the change log, want 1", id, comment, b.logged[id])
			}
		}
	}
	for comment, id := range a.created {
		if ids := b.topics[comment]; len(ids) != 1 || ids[0] != id {
			t.Errorf("201 for %q as topic %d, but the database holds it as %v", comment, id, ids)
		}
	}
	for comment, status := range a.refused {
		if ids := b.topics[comment]; len(ids) != 0 {
			t.Errorf("%q was answered %d (nothing written) but is stored as %v", comment, status, ids)
		}
	}
}

// TestGroupCommitManyWriters: 48 writers at once over three replicas. The
// creates are committed in batches, yet every one is answered 201, stored
// once, logged once under its own version, and every stream converges.
func TestGroupCommitManyWriters(t *testing.T) {
	c := newCluster(t, "")
	replicas := startReplicas(c, nil, "r1", "r2", "r3")
	views := watchEach(t, replicas, 2)
	targets := []string{replicas[0].URL, replicas[1].URL, replicas[2].URL}

	const writers, perWriter = 48, 25
	a := newAcked()
	writeConcurrently(targets, writers, perWriter, func(w, i int) string { return fmt.Sprintf("w%d-%d", w, i) }, a)
	if len(a.created) != writers*perWriter || len(a.refused) != 0 || len(a.unknown) != 0 {
		t.Fatalf("%d created, %d refused (%v), %d unanswered; want all %d created",
			len(a.created), len(a.refused), a.refused, len(a.unknown), writers*perWriter)
	}
	b := readBoard(t, c.db(t))
	expectWhole(t, b, a)
	if b.head != writers*perWriter {
		t.Errorf("database at version %d after %d creates", b.head, writers*perWriter)
	}
	expectConverged(t, replicas, views, 10*time.Second)

	// The point of it: creates shared transactions.
	var batched, batches float64
	for _, r := range replicas {
		batched += r.metric(t, "bbs_write_batch_size_sum")
		batches += r.metric(t, "bbs_write_batch_size_count")
	}
	if batches == 0 || batched != writers*perWriter || batched/batches < 1.5 {
		t.Errorf("%.0f creates in %.0f batches: want all %d, more than one per batch on average", batched, batches, writers*perWriter)
	}
	t.Logf("%d creates by %d writers in %.0f batches (%.1f per batch)", int(batched), writers, batches, batched/batches)
}

// TestBatchFailsMidway: a trigger makes the database refuse the change-log
// entry of some creates, after their topic rows were inserted in the
// same batch as others'. The batch rolls back whole; then each of its
// writes goes again alone: the refused ones are answered 503 and absent,
// the others are answered 201 and present, and nothing is half-written.
func TestBatchFailsMidway(t *testing.T) {
	c := newCluster(t, "")
	replicas := startReplicas(c, nil, "r1", "r2")
	views := watchEach(t, replicas, 1)
	db := c.db(t)
	execAll(t, db,
		`CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.comment LIKE 'poison%' THEN
    RAISE EXCEPTION 'refused by the test' USING ERRCODE = '40001';
  END IF;
  RETURN NEW;
END $$`,
		`CREATE TRIGGER refuse_poison BEFORE INSERT ON topic_changes FOR EACH ROW EXECUTE FUNCTION refuse_poison()`)
	const writers, perWriter = 32, 12
	a := newAcked()
	poison := func(w, i int) bool { return (w*perWriter+i)%7 == 3 }
	writeConcurrently([]string{replicas[0].URL, replicas[1].URL}, writers, perWriter, func(w, i int) string {
		if poison(w, i) {
			return fmt.Sprintf("poison w%d-%d", w, i)
		}
		return fmt.Sprintf("good w%d-%d", w, i)
	}, a)
	if len(a.unknown) != 0 {
		t.Fatalf("%d writes got no answer: %v", len(a.unknown), a.unknown)
	}
	var poisoned int
	for w := range writers {
		for i := range perWriter {
			if poison(w, i) {
				poisoned++
			}
		}
	}
	for comment, status := range a.refused {
		if !strings.HasPrefix(comment, "poison") || status != http.StatusServiceUnavailable {
			t.Errorf("%q answered %d; only poison is refused, with 503", comment, status)
		}
	}
	for comment := range a.created {
		if strings.HasPrefix(comment, "poison") {
			t.Errorf("%q answered 201", comment)
		}
	}
	if len(a.refused) != poisoned || len(a.created) != writers*perWriter-poisoned {
		t.Errorf("%d created, %d refused; want %d and %d", len(a.created), len(a.refused), writers*perWriter-poisoned, poisoned)
	}
	expectWhole(t, readBoard(t, db), a)
	expectConverged(t, replicas, views, 10*time.Second)
	// Poison must have shared batches with good writes, or this tested
	// nothing: then the batch failed, and its writes went again alone, so
	// more creates were tried than were sent.
	var tried, batches float64
	for _, r := range replicas {
		tried += r.metric(t, "bbs_write_batch_size_sum")
		batches += r.metric(t, "bbs_write_batch_size_count")
	}
	if tried <= writers*perWriter {
		t.Errorf("%.0f creates tried in %.0f batches for %d sent: no batch held poison and good writes together", tried, batches, writers*perWriter)
	}
	t.Logf("%d good creates stored, %d poison refused; %.0f creates tried in %.0f batches", len(a.created), len(a.refused), tried, batches)
}

// TestReplicaKilledWithBatchInFlight: a replica process is SIGKILLed while
// a batch of its creates is inside its transaction (a trigger holds the
// batch there). Postgres rolls the transaction back; every write that was
// answered 201, by either replica, is stored exactly once; none is stored
// twice; the survivor and its streams converge on the database.
func TestReplicaKilledWithBatchInFlight(t *testing.T) {
	c := newCluster(t, "")
	db := c.db(t)
	execAll(t, db,
		`CREATE FUNCTION hold_slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.comment LIKE 'slow%' THEN
    PERFORM pg_sleep(2);
  END IF;
  RETURN NEW;
END $$`,
		`CREATE TRIGGER hold_slow BEFORE INSERT ON topics FOR EACH ROW EXECUTE FUNCTION hold_slow()`)
	doomed := c.startProcess("doomed", nil)
	survivor := c.start("survivor", nil)
	views := watchEach(t, []*replica{survivor}, 2)

	a := newAcked()
	var wg sync.WaitGroup
	// Writers on the doomed replica: a slow create holds its batch in the
	// database; the creates queued behind it form the next batch.
	for w := range 8 {
		wg.Go(func() {
			for i := range 6 {
				comment := fmt.Sprintf("doomed w%d-%d", w, i)
				if i == 0 && w == 0 {
					comment = "slow " + comment
				}
				created, o := tryCreate(doomed.URL, comment)
				a.record(comment, created, o)
				if o.Err != nil {
					return // the replica is gone
				}
			}
		})
	}
	// Writers on the survivor, before, during and after the kill.
	for w := range 4 {
		wg.Go(func() {
			for i := range 20 {
				comment := fmt.Sprintf("survivor w%d-%d", w, i)
				created, o := tryCreate(survivor.URL, comment)
				a.record(comment, created, o)
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	time.Sleep(700 * time.Millisecond) // the slow batch is in the database now
	var inFlight int64
	if err := db.Raw("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'").Scan(&inFlight).Error; err != nil {
		t.Fatal(err)
	}
	if inFlight != 1 {
		t.Fatalf("%d sessions inside the slow trigger when the kill comes; want the doomed replica's batch", inFlight)
	}
	if _, err := doomed.signal(syscall.SIGKILL, 5*time.Second); err == nil {
		t.Fatal("SIGKILLed process exited cleanly?")
	}
	wg.Wait()
	// Postgres notices the dead client once the sleep ends; its
	// transaction never gets a COMMIT.
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := db.Raw("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' OR state = 'idle in transaction'").Scan(&inFlight).Error; err != nil {
			t.Fatal(err)
		}
		if inFlight > 0 {
			return fmt.Errorf("%d sessions still in the killed replica's transaction", inFlight)
		}
		return nil
	})
	survivor.create(t, "after the kill") // moves every view past the end
	b := readBoard(t, db)
	expectWhole(t, b, a)
	if _, ok := b.topics["slow doomed w0-0"]; ok {
		t.Error("the slow create, whose batch never committed, is stored")
	}
	expectConverged(t, []*replica{survivor}, views, 10*time.Second)
	t.Logf("%d writes answered 201, %d got no answer (the killed replica's); the database holds each 201 once", len(a.created), len(a.unknown))
}
