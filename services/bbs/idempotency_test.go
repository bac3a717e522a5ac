package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/store"
	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/wire"
	"gorm.io/gorm"
)

// These tests hold the cluster to docs/ARCHITECTURE.md's row "COMMIT
// without an answer": the client is told the outcome is unknown (503
// outcome_unknown), not "nothing was written", and a create retried with
// the same Idempotency-Key can never make a second topic; the retry gets
// the first one back, with a token that works.

// createKeyed posts comment with key (none if ""); created is zero unless
// the answer was 201.
func createKeyed(baseURL, key, comment string) (created wire.Created, a testenv.Answer) {
	rq := testenv.Request{Method: "POST", URL: baseURL + "/api/topics", JSON: wire.CommentBody{Comment: comment}}
	if key != "" {
		rq.Header = map[string]string{"Idempotency-Key": key}
	}
	a = testenv.Send(rq)
	if a.Status == http.StatusCreated {
		if err := json.Unmarshal(a.Body, &created); err != nil {
			a.Err = err
		}
	}
	return created, a
}

// directDB opens the cluster's database without any proxy in between.
func directDB(t *testing.T, c *cluster) *gorm.DB {
	t.Helper()
	ctx := testenv.Context(t, 10*time.Second)
	s, err := store.Open(ctx, c.base["DATABASE_URL"], slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.DB()
}

// rowsWith counts the topic rows (deleted or not) with this comment.
func rowsWith(t *testing.T, db *gorm.DB, comment string) int64 {
	t.Helper()
	var n int64
	if err := db.Table("topics").Where("comment = ?", comment).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// newKey is an idempotency key as a client makes one: random, URL-safe.
func newKey() string { return testenv.Name("k-") + testenv.Name("") }

// TestIdempotencyKeyRules: what POST /api/topics does with the
// Idempotency-Key header, through two replicas of one cluster.
func TestIdempotencyKeyRules(t *testing.T) {
	c := newCluster(t, "")
	replicas := startReplicas(c, nil, "r1", "r2")
	r1, r2 := replicas[0], replicas[1]
	views := watchEach(t, replicas, 1)
	db := directDB(t, c)

	t.Run("invalid keys", func(t *testing.T) {
		for _, key := range []string{
			"", "short", strings.Repeat("k", 15), strings.Repeat("k", 129),
			"has spaces in it, 1234", "dots.are.not.allowed.here", "ünïcödé-ünïcödé-ünïcödé",
		} {
			a := testenv.Do(t, testenv.Request{
				Method: "POST", URL: r1.URL + "/api/topics", JSON: wire.CommentBody{Comment: "with a bad key"}, Header: map[string]string{"Idempotency-Key": key},
			})
			checkAPIError(t, a, http.StatusBadRequest, "invalid_idempotency_key")
		}
		if n := rowsWith(t, db, "with a bad key"); n != 0 {
			t.Errorf("%d rows from refused keys", n)
		}
		// The bounds themselves are accepted.
		for _, key := range []string{strings.Repeat("a", 16), strings.Repeat("Z9_-", 32)} {
			if _, a := createKeyed(r1.URL, key, "key of length "+fmt.Sprint(len(key))); a.Status != http.StatusCreated {
				t.Errorf("key of %d characters: %v, want 201", len(key), a)
			}
		}
	})

	t.Run("retry", func(t *testing.T) {
		key := newKey()
		first, a := createKeyed(r1.URL, key, "posted once")
		if a.Status != http.StatusCreated || first.Token == "" {
			t.Fatalf("first POST: %v", a)
		}
		if a.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("first POST says it was replayed")
		}
		versionAfter := databaseList(t, r1).Version
		// The same key and comment (normalised alike), on another replica.
		again, a := createKeyed(r2.URL, key, "  posted once\r\n")
		if a.Status != http.StatusCreated || again != first {
			t.Fatalf("retry with the same key: %v = %+v, want 201 with %+v", a, again, first)
		}
		if a.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("retry answer lacks Idempotent-Replayed: true")
		}
		if v := databaseList(t, r1).Version; v != versionAfter {
			t.Errorf("version %d after the retry, want %d: the retry wrote something", v, versionAfter)
		}
		if n := rowsWith(t, db, "posted once"); n != 1 {
			t.Errorf("%d rows after a retried create, want 1", n)
		}
		// The same key with another comment is refused, on any replica.
		for _, r := range replicas {
			_, a := createKeyed(r.URL, key, "something else")
			if a.Status != http.StatusUnprocessableEntity || a.ErrCode != "idempotency_key_reused" {
				t.Errorf("same key, other comment on %s: %v, want 422 idempotency_key_reused", r.id, a)
			}
		}
		// The token the retry gave back works.
		if o := testenv.Send(testenv.Request{Method: "PATCH", URL: topicURL(r2, first.Topic.ID), Token: again.Token, JSON: wire.CommentBody{Comment: "posted once, edited"}}); o.Status != http.StatusOK {
			t.Errorf("PATCH with the retry's token: %v", o)
		}
		// Without a key, two posts are two topics, as before.
		for range 2 {
			if _, a := createKeyed(r1.URL, "", "no key"); a.Status != http.StatusCreated {
				t.Errorf("POST without a key: %v", a)
			}
		}
		if n := rowsWith(t, db, "no key"); n != 2 {
			t.Errorf("%d rows from two posts without a key, want 2", n)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		key := newKey()
		const attempts = 12
		answers := make([]wire.Created, attempts)
		outcomes := make([]testenv.Answer, attempts)
		var wg sync.WaitGroup
		for i := range attempts {
			wg.Go(func() { answers[i], outcomes[i] = createKeyed(replicas[i%2].URL, key, "raced with one key") })
		}
		wg.Wait()
		for i, a := range outcomes {
			if a.Status != http.StatusCreated {
				t.Errorf("attempt %d: %v, want 201", i, a)
				continue
			}
			if answers[i] != answers[0] {
				t.Errorf("attempt %d answered %+v, attempt 0 %+v", i, answers[i], answers[0])
			}
		}
		if n := rowsWith(t, db, "raced with one key"); n != 1 {
			t.Errorf("%d concurrent POSTs with one key made %d rows, want 1", attempts, n)
		}
	})

	t.Run("form post", func(t *testing.T) {
		key := newKey()
		for range 2 {
			a := testenv.Do(t, testenv.Request{
				Method: "POST", URL: r1.URL + "/api/topics", ContentType: "application/x-www-form-urlencoded",
				Body: []byte(url.Values{"comment": {"form with a key"}}.Encode()), Header: map[string]string{"Idempotency-Key": key},
			})
			if a.Status != http.StatusSeeOther {
				t.Errorf("form post with a key: %d %s, want 303", a.Status, a.Body)
			}
		}
		if n := rowsWith(t, db, "form with a key"); n != 1 {
			t.Errorf("two form posts with one key made %d rows, want 1", n)
		}
	})

	t.Run("deleted since", func(t *testing.T) {
		key := newKey()
		created, a := createKeyed(r1.URL, key, "deleted later")
		if a.Status != http.StatusCreated {
			t.Fatalf("POST: %v", a)
		}
		if o := testenv.Send(testenv.Request{Method: "DELETE", URL: topicURL(r1, created.Topic.ID), Token: created.Token}); o.Status != http.StatusNoContent {
			t.Fatalf("DELETE: %v", o)
		}
		if _, a := createKeyed(r2.URL, key, "deleted later"); a.Status != http.StatusGone || a.ErrCode != "deleted" {
			t.Errorf("retry of a create whose topic was deleted since: %v, want 410 deleted", a)
		}
		if n := rowsWith(t, db, "deleted later"); n != 1 {
			t.Errorf("%d rows, want 1", n)
		}
	})

	// The retries published nothing: every view applied each version once,
	// and all agree with the database.
	expectConverged(t, replicas, views, 10*time.Second)
}

// slowCommitTriggerSQL makes COMMIT itself take a second, for real, for the
// writes this test marks by their comment: a deferred constraint trigger
// runs inside COMMIT and sleeps there. That second is the window in which
// the test freezes the replicas' connections to Postgres: the COMMIT
// completes in the database, and its answer never reaches the replica.
const slowCommitTriggerSQL = `
CREATE FUNCTION test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF (TG_OP = 'INSERT' AND NEW.comment LIKE 'slow create%')
		OR (TG_OP = 'UPDATE' AND NEW.comment LIKE 'slow edit%')
		OR (TG_OP = 'UPDATE' AND NEW.deleted_at IS NOT NULL AND NEW.comment LIKE 'slow delete%') THEN
		PERFORM pg_sleep(1);
	END IF;
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER test_slow_commit AFTER INSERT OR UPDATE ON topics
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_slow_commit();`

// freezeDuringCommit waits until a session of the test's database is
// sleeping in the trigger inside its COMMIT, then freezes the proxy between the replicas and Postgres:
// the COMMIT goes on in the database, and its answer is held.
func freezeDuringCommit(t *testing.T, db *gorm.DB, proxy *testenv.Proxy) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		var n int64
		err := db.Raw(`SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' AND lower(query) = 'commit' AND wait_event = 'PgSleep'`).Scan(&n).Error
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return errors.New("no COMMIT in flight")
		}
		return nil
	})
	proxy.Freeze()
}

// TestWriteOutcomeUnknown: the connection between a replica and Postgres
// hangs while a write's COMMIT is in flight; the COMMIT lands, its answer
// never comes. The replica must answer 503 outcome_unknown (not
// "unavailable: nothing was written"), with Retry-After. A create retried
// with the same key once the database answers again gets the topic that
// landed and a token that works, and nothing is created twice; a retried
// edit is applied again (the same result); a retried delete that had
// landed answers 404. Every replica finds the write that landed unannounced
// through its periodic version check.
func TestWriteOutcomeUnknown(t *testing.T) {
	c := newCluster(t, "")
	proxy, proxied := databaseProxy(t, c)
	replicas := startReplicas(c, map[string]string{"DATABASE_URL": proxied, "VERSION_CHECK": "300ms"}, "r1", "r2")
	r1, r2 := replicas[0], replicas[1]
	views := watchEach(t, replicas, 1)
	db := directDB(t, c)
	if err := db.Exec(slowCommitTriggerSQL).Error; err != nil {
		t.Fatal(err)
	}
	edited := r1.create(t, "to be edited")
	deleted := r1.create(t, "slow delete me")

	// unknown sends a write while freezing the database connections during
	// its COMMIT, and checks the answer says the outcome is unknown.
	unknown := func(t *testing.T, what string, send func() testenv.Answer) {
		t.Helper()
		answer := make(chan testenv.Answer, 1)
		go func() { answer <- send() }()
		freezeDuringCommit(t, db, proxy)
		a := <-answer
		proxy.Restore()
		t.Logf("%s with its COMMIT's answer lost: %v", what, a)
		if a.Status != http.StatusServiceUnavailable || a.ErrCode != "outcome_unknown" {
			t.Errorf("%s whose COMMIT was not answered: %v, want 503 outcome_unknown", what, a)
		}
		if a.Header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 outcome_unknown without Retry-After", what)
		}
		if strings.Contains(string(a.Body), "nothing was written") {
			t.Errorf("%s: says nothing was written, which may be false: %s", what, a.Body)
		}
	}

	t.Run("create", func(t *testing.T) {
		key := newKey()
		const comment = "slow create, answer lost"
		unknown(t, "POST", func() testenv.Answer {
			_, a := createKeyed(r1.URL, key, comment)
			return a
		})
		// It did land (which is why "nothing was written" would have been
		// a lie, and a retry without the key a duplicate).
		if n := rowsWith(t, db, comment); n != 1 {
			t.Fatalf("%d rows after the COMMIT in the database, want 1", n)
		}
		var landed int64
		if err := db.Table("topics").Where("comment = ?", comment).Select("id").Scan(&landed).Error; err != nil {
			t.Fatal(err)
		}
		// The retry, on either replica, gets that topic and its token.
		var tokens []string
		for _, r := range []*replica{r1, r2} {
			got, a := createKeyed(r.URL, key, comment)
			if a.Status != http.StatusCreated || got.Topic.ID != landed || got.Topic.Comment != comment {
				t.Fatalf("retry on %s with the same key: %v; want 201 with topic %d", r.id, a, landed)
			}
			tokens = append(tokens, got.Token)
		}
		if tokens[0] != tokens[1] {
			t.Errorf("two retries gave two tokens")
		}
		if o := testenv.Send(testenv.Request{Method: "PATCH", URL: topicURL(r2, landed), Token: tokens[0], JSON: wire.CommentBody{Comment: "edited by its author"}}); o.Status != http.StatusOK {
			t.Errorf("PATCH with the retry's token: %v, want 200", o)
		}
		if n := rowsWith(t, db, comment) + rowsWith(t, db, "edited by its author"); n != 1 {
			t.Errorf("%d rows for the retried create, want 1", n)
		}
	})

	t.Run("edit", func(t *testing.T) {
		const comment = "slow edit, answer lost"
		unknown(t, "PATCH", func() testenv.Answer {
			return testenv.Send(testenv.Request{Method: "PATCH", URL: topicURL(r1, edited.Topic.ID), Token: edited.Token, JSON: wire.CommentBody{Comment: comment}})
		})
		if n := rowsWith(t, db, comment); n != 1 {
			t.Fatalf("the edit did not land (%d rows)", n)
		}
		// Retrying an edit is safe: it applies the same comment again.
		if o := testenv.Send(testenv.Request{Method: "PATCH", URL: topicURL(r2, edited.Topic.ID), Token: edited.Token, JSON: wire.CommentBody{Comment: comment}}); o.Status != http.StatusOK {
			t.Errorf("retried PATCH: %v, want 200", o)
		}
	})

	t.Run("delete", func(t *testing.T) {
		unknown(t, "DELETE", func() testenv.Answer {
			return testenv.Send(testenv.Request{Method: "DELETE", URL: topicURL(r1, deleted.Topic.ID), Token: deleted.Token})
		})
		// It landed, so the retry finds nothing to delete.
		if o := testenv.Send(testenv.Request{Method: "DELETE", URL: topicURL(r2, deleted.Topic.ID), Token: deleted.Token}); o.Status != http.StatusNotFound {
			t.Errorf("retried DELETE that had landed: %v, want 404", o)
		}
	})

	// The writes that landed unannounced reach every replica and view.
	truth := expectConverged(t, replicas, views, 10*time.Second)
	for _, tp := range truth.Topics {
		if tp.ID == deleted.Topic.ID {
			t.Errorf("deleted topic %d still shown", tp.ID)
		}
	}
}
