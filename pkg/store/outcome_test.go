package store_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/store"
	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/topic"
)

// These tests hold the store to docs/ARCHITECTURE.md's row "COMMIT
// without an answer": a write that failed before COMMIT reports
// ErrUnavailable (nothing was written, certainly); one whose COMMIT was
// sent and never answered reports ErrOutcomeUnknown, because it may have
// landed; and a create retried with the same idempotency key can never
// make a second topic.

// openStore opens and migrates a store on url.
func openStore(t *testing.T, url string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), url, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

// stores opens a migrated store on each database the product supports.
func stores(t *testing.T) map[string]*store.Store {
	return map[string]*store.Store{
		"postgres": openStore(t, testenv.PostgresURL(t)),
		"sqlite":   openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "bbs.db")),
	}
}

// slowCommitSQL makes COMMIT itself slow, for real: a deferred constraint
// trigger runs at COMMIT, inside it, and sleeps there for a second for
// topics whose comment starts with "slow commit".
const slowCommitSQL = `
CREATE FUNCTION test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.comment LIKE 'slow commit%' THEN PERFORM pg_sleep(1); END IF;
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER test_slow_commit AFTER INSERT ON topics
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_slow_commit();`

// lostCommit is a store whose connections to Postgres go through a proxy
// that the test can freeze while a COMMIT is in flight: the COMMIT
// completes in the database and its answer never reaches the store, the
// case where "nothing was written" would be a lie and a retry a duplicate.
// (pgx's cancel request after its timeout goes through the frozen proxy
// too, so it cannot stop the COMMIT either.)
type lostCommit struct {
	s, direct *store.Store // through the proxy; straight to Postgres
	proxy     *testenv.Proxy
}

func newLostCommit(t *testing.T) *lostCommit {
	t.Helper()
	dbURL := testenv.PostgresURL(t)
	direct := openStore(t, dbURL)
	if err := direct.DB().Exec(slowCommitSQL).Error; err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartProxy(t, u.Host)
	u.Host = proxy.Addr()
	return &lostCommit{s: openStore(t, u.String()), direct: direct, proxy: proxy}
}

// during runs write, freezes the proxy once a COMMIT is sleeping in the
// trigger, and restores it once write returned.
func (l *lostCommit) during(t *testing.T, write func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- write() }()
	testenv.Eventually(t, 10*time.Second, func() error {
		var n int64
		err := l.direct.DB().Raw(`SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND state = 'active' AND lower(query) = 'commit' AND wait_event = 'PgSleep'`).Scan(&n).Error
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return errors.New("no COMMIT in flight")
		}
		return nil
	})
	l.proxy.Freeze()
	err := <-done
	l.proxy.Restore()
	return err
}

// countTopics counts the rows (deleted or not) with this comment.
func countTopics(t *testing.T, s *store.Store, comment string) int64 {
	t.Helper()
	var n int64
	if err := s.DB().Table("topics").Where("comment = ?", comment).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCommitWithoutAnswerIsOutcomeUnknown: the COMMIT is sent but its
// answer does not come within the bound. The store must not say "nothing
// was written" (ErrUnavailable): it says ErrOutcomeUnknown, and indeed the
// topic lands a moment later.
func TestCommitWithoutAnswerIsOutcomeUnknown(t *testing.T) {
	l := newLostCommit(t)
	ctx := context.Background()
	_, hash := topic.NewToken()
	start := time.Now()
	var changes []topic.Change
	err := l.during(t, func() (err error) {
		_, changes, err = l.s.Create(ctx, "slow commit", hash)
		return err
	})
	t.Logf("create whose COMMIT's answer was lost: %v after %v", err, time.Since(start).Round(time.Millisecond))
	if !errors.Is(err, topic.ErrOutcomeUnknown) || errors.Is(err, topic.ErrUnavailable) || changes != nil {
		t.Fatalf("create whose COMMIT was not answered: %v (changes %v), want ErrOutcomeUnknown and not ErrUnavailable", err, changes)
	}
	// It was right not to say "nothing was written": the topic is there.
	if n := countTopics(t, l.direct, "slow commit"); n != 1 {
		t.Fatalf("%d rows, want 1: the test did not lose the answer of a COMMIT that landed", n)
	}
	if v, err := l.direct.Version(ctx); err != nil || v != 1 {
		t.Fatalf("version after the landed create = %d, %v; want 1", v, err)
	}
	// The store works again once the database answers.
	if _, _, err := l.s.Create(ctx, "after", hash); err != nil {
		t.Fatalf("create after the database answers again: %v", err)
	}
}

// TestFailureBeforeCommitIsUnavailable: writes that fail before COMMIT is
// sent, or whose COMMIT the database answers with an error, wrote nothing,
// and the store says so (ErrUnavailable where a retry may succeed), never
// ErrOutcomeUnknown.
func TestFailureBeforeCommitIsUnavailable(t *testing.T) {
	s := openStore(t, testenv.PostgresURL(t))
	ctx := context.Background()
	if err := s.DB().Exec(`
CREATE FUNCTION test_refuse_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.comment = 'serialization failure at commit' THEN
		RAISE EXCEPTION 'test: could not serialize' USING ERRCODE = 'serialization_failure';
	ELSIF NEW.comment = 'check failure at commit' THEN
		RAISE EXCEPTION 'test: deferred check' USING ERRCODE = 'check_violation';
	END IF;
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER test_refuse_commit AFTER INSERT ON topics
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_refuse_commit();`).Error; err != nil {
		t.Fatal(err)
	}

	t.Run("statement outlasts the query timeout", func(t *testing.T) {
		// Another transaction holds the version row, so the create's
		// version bump waits until the query timeout ends it.
		holder := s.DB().Begin()
		if err := holder.Exec("SELECT v FROM bbs_version WHERE id = 1 FOR UPDATE").Error; err != nil {
			t.Fatal(err)
		}
		_, hash := topic.NewToken()
		_, _, err := s.Create(ctx, "blocked before commit", hash)
		if err := holder.Rollback().Error; err != nil {
			t.Fatal(err)
		}
		if !errors.Is(err, topic.ErrUnavailable) || errors.Is(err, topic.ErrOutcomeUnknown) {
			t.Fatalf("create that timed out before COMMIT: %v, want ErrUnavailable", err)
		}
		if n := countTopics(t, s, "blocked before commit"); n != 0 {
			t.Fatalf("%d rows from a create that failed before COMMIT", n)
		}
	})
	for _, tc := range []struct {
		comment     string
		unavailable bool // a retry may succeed
	}{
		{"serialization failure at commit", true},
		{"check failure at commit", false},
	} {
		t.Run(tc.comment, func(t *testing.T) {
			_, hash := topic.NewToken()
			_, _, err := s.Create(ctx, tc.comment, hash)
			if err == nil || errors.Is(err, topic.ErrOutcomeUnknown) || errors.Is(err, topic.ErrUnavailable) != tc.unavailable {
				t.Fatalf("COMMIT refused with %q: %v; want a certain failure (ErrUnavailable: %v)", tc.comment, err, tc.unavailable)
			}
			if n := countTopics(t, s, tc.comment); n != 0 {
				t.Fatalf("%d rows from a refused COMMIT", n)
			}
		})
	}
	if v, err := s.Version(ctx); err != nil || v != 0 {
		t.Fatalf("version after only failed writes = %d, %v; want 0", v, err)
	}
}

// TestCreateOnce: one idempotency key makes at most one topic, however
// often and however concurrently the create is sent; the retries get it
// back with nothing written; the key with another comment is refused.
func TestCreateOnce(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			key := testenv.Name("key-0123456789-")
			tok, hash := topic.KeyToken(key)
			first, changes, replayed, err := s.CreateOnce(ctx, "once", hash, topic.KeyHash(key))
			if err != nil || replayed || len(changes) != 1 || changes[0].Topic != first {
				t.Fatalf("first create: %+v %+v replayed %v, %v", first, changes, replayed, err)
			}
			again, changes, replayed, err := s.CreateOnce(ctx, "once", hash, topic.KeyHash(key))
			if err != nil || !replayed || changes != nil || again != first {
				t.Fatalf("retry: %+v %+v replayed %v, %v; want %+v replayed, no changes", again, changes, replayed, err, first)
			}
			if _, _, _, err := s.CreateOnce(ctx, "another comment", hash, topic.KeyHash(key)); !errors.Is(err, topic.ErrKeyReused) {
				t.Fatalf("same key, other comment: %v, want ErrKeyReused", err)
			}
			// Topics without a key store NULL, which the unique index ignores.
			for range 2 {
				_, h := topic.NewToken()
				if _, _, err := s.Create(ctx, "no key", h); err != nil {
					t.Fatalf("create without a key: %v", err)
				}
			}
			if v, _ := s.Version(ctx); v != 3 {
				t.Fatalf("version = %d, want 3: the retry and the refused reuse must write nothing", v)
			}
			// The key's token is the topic's token.
			auth := topic.NewAuthorizer("")
			if _, _, err := s.Update(ctx, first.ID, "edited", func(h []byte) error { return auth.Check(tok, h) }); err != nil {
				t.Fatalf("edit with the key's token: %v", err)
			}

			// Many attempts at once with one fresh key: one topic.
			key = testenv.Name("key-concurrent-")
			_, hash = topic.KeyToken(key)
			const attempts = 8
			var wg sync.WaitGroup
			type result struct {
				t        topic.Topic
				replayed bool
				err      error
			}
			results := make(chan result, attempts)
			for range attempts {
				wg.Go(func() {
					tp, _, replayed, err := s.CreateOnce(ctx, "raced", hash, topic.KeyHash(key))
					results <- result{tp, replayed, err}
				})
			}
			wg.Wait()
			close(results)
			var made int
			var id int64
			for r := range results {
				if r.err != nil {
					t.Fatalf("concurrent create: %v", r.err)
				}
				if !r.replayed {
					made++
				}
				if id != 0 && r.t.ID != id {
					t.Fatalf("concurrent creates with one key answered topics %d and %d", id, r.t.ID)
				}
				id = r.t.ID
			}
			if made != 1 || countTopics(t, s, "raced") != 1 {
				t.Fatalf("%d attempts with one key made %d topics (%d rows), want 1", attempts, made, countTopics(t, s, "raced"))
			}

			// A topic made with the key and deleted since is not made again.
			if _, err := s.Delete(ctx, id, false, func([]byte) error { return nil }); err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := s.CreateOnce(ctx, "raced", hash, topic.KeyHash(key)); !errors.Is(err, topic.ErrNotFound) {
				t.Fatalf("retry after the topic was deleted: %v, want ErrNotFound", err)
			}
			if n := countTopics(t, s, "raced"); n != 1 {
				t.Fatalf("%d rows after a retry of a deleted topic's create, want 1", n)
			}
		})
	}
}

// TestRetryAfterUnknownOutcome: a create with a key whose COMMIT's answer
// was lost is retried with the same key once the database answers again.
// The retry finds the topic the first attempt made (its INSERT hits the
// unique index) and answers with it: one topic in all, nothing published.
func TestRetryAfterUnknownOutcome(t *testing.T) {
	l := newLostCommit(t)
	ctx := context.Background()
	key := testenv.Name("key-unknown-")
	_, hash := topic.KeyToken(key)
	const comment = "slow commit, then retried"
	err := l.during(t, func() error {
		_, _, _, err := l.s.CreateOnce(ctx, comment, hash, topic.KeyHash(key))
		return err
	})
	if !errors.Is(err, topic.ErrOutcomeUnknown) {
		t.Fatalf("create whose COMMIT was not answered: %v, want ErrOutcomeUnknown", err)
	}
	got, changes, replayed, err := l.s.CreateOnce(ctx, comment, hash, topic.KeyHash(key))
	if err != nil || !replayed || changes != nil || got.Comment != comment || got.ID == 0 {
		t.Fatalf("retry with the same key: %+v %+v replayed %v, %v; want the first attempt's topic", got, changes, replayed, err)
	}
	if n := countTopics(t, l.direct, comment); n != 1 {
		t.Fatalf("%d topics after a retried create, want 1", n)
	}
	if v, _ := l.direct.Version(ctx); v != 1 {
		t.Fatalf("version = %d, want 1", v)
	}
}
