package store_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/store"
	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/topic"
)

// dialects opens a migrated store on each database the product supports.
func dialects(t *testing.T, opts ...store.Option) map[string]*store.Store {
	t.Helper()
	return map[string]*store.Store{
		"postgres": openDialect(t, "postgres", opts...),
		"sqlite":   openDialect(t, "sqlite", opts...),
	}
}

// openDialect opens a migrated store on a fresh database of one dialect.
func openDialect(t *testing.T, dialect string, opts ...store.Option) *store.Store {
	t.Helper()
	url := testenv.PostgresURL(t)
	if dialect == "sqlite" {
		url = "sqlite:" + filepath.Join(t.TempDir(), "bbs.db")
	}
	s, err := store.Open(context.Background(), url, slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("%s: migrate: %v", dialect, err)
	}
	return s
}

func allow([]byte) error { return nil }

func TestWritesAssignVersionsAndLogChanges(t *testing.T) {
	for name, s := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			_, hash := topic.NewToken()
			created, ch, err := s.Create(ctx, "hello", hash)
			if err != nil {
				t.Fatal(err)
			}
			if len(ch) != 1 || ch[0].Version != 1 || ch[0].Kind != topic.Created || ch[0].Topic != created {
				t.Fatalf("create changes = %+v, topic %+v", ch, created)
			}
			time.Sleep(2 * time.Millisecond) // so updated_at moves
			updated, ch, err := s.Update(ctx, created.ID, "edited", allow)
			if err != nil {
				t.Fatal(err)
			}
			if updated.Comment != "edited" || !updated.UpdatedAt.After(created.UpdatedAt) || !updated.CreatedAt.Equal(created.CreatedAt) {
				t.Fatalf("updated = %+v, created %+v", updated, created)
			}
			if len(ch) != 1 || ch[0].Version != 2 || ch[0].Kind != topic.Updated || ch[0].Topic != updated {
				t.Fatalf("update changes = %+v want topic %+v", ch, updated)
			}
			page, err := s.Page(ctx, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if page.Version != 2 || len(page.Topics) != 1 || page.Topics[0] != updated {
				t.Fatalf("page = %+v, want %+v at 2", page, updated)
			}
			ch, err = s.Delete(ctx, created.ID, false, allow)
			if err != nil || len(ch) != 1 || ch[0].Version != 3 || ch[0].Kind != topic.Deleted || ch[0].ID != created.ID {
				t.Fatalf("delete = %+v, %v", ch, err)
			}
			if _, _, err := s.Update(ctx, created.ID, "again", allow); !errors.Is(err, topic.ErrNotFound) {
				t.Fatalf("update of deleted topic: %v, want ErrNotFound", err)
			}
			h, err := s.ChangesSince(ctx, 0, 100)
			log := h.Changes
			if err != nil || len(log) != 3 || h.Head != 3 || h.HeadStamp != log[2].Stamp {
				t.Fatalf("log = %+v, %v", log, err)
			}
			for i, c := range log {
				if c.Version != int64(i+1) {
					t.Fatalf("log[%d].Version = %d", i, c.Version)
				}
			}
			// The delete took the topic's text out of the log: its entries
			// stay, as versions, but can no longer be replayed.
			for _, c := range log[:2] {
				if !c.Redacted || c.Topic.Comment != "" {
					t.Fatalf("log keeps %+v after the delete, want it redacted", c)
				}
			}
		})
	}
}

func TestRejectedWriteLeavesNothing(t *testing.T) {
	for name, s := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			tok, hash := topic.NewToken()
			created, _, err := s.Create(ctx, "mine", hash)
			if err != nil {
				t.Fatal(err)
			}
			auth := topic.NewAuthorizer("")
			_, _, err = s.Update(ctx, created.ID, "theirs", func(h []byte) error { return auth.Check("wrong", h) })
			if !errors.Is(err, topic.ErrForbidden) {
				t.Fatalf("update with wrong token: %v", err)
			}
			if v, _ := s.Version(ctx); v != 1 {
				t.Fatalf("version after rejected update = %d, want 1", v)
			}
			if _, _, err := s.Update(ctx, created.ID, "ok", func(h []byte) error { return auth.Check(tok, h) }); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestConcurrentWritersGetGapFreeVersions: versions are handed out under
// the version row's lock, so many writers at once still get 1..N exactly
// once each, and the log replays them in that order.
func TestConcurrentWritersGetGapFreeVersions(t *testing.T) {
	for name, s := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			const writers, each = 8, 10
			var wg sync.WaitGroup
			errs := make(chan error, writers*each)
			for w := 0; w < writers; w++ {
				wg.Go(func() {
					for i := 0; i < each; i++ {
						_, hash := topic.NewToken()
						if _, _, err := s.Create(ctx, "race", hash); err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			h, err := s.ChangesSince(ctx, 0, 1000)
			log := h.Changes
			if err != nil || len(log) != writers*each {
				t.Fatalf("log has %d entries, %v", len(log), err)
			}
			for i, c := range log {
				if c.Version != int64(i+1) {
					t.Fatalf("log[%d] is version %d: gap or duplicate", i, c.Version)
				}
			}
		})
	}
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	url := testenv.PostgresURL(t)
	var wg sync.WaitGroup
	applied := make(chan int, 4)
	for i := 0; i < 4; i++ {
		wg.Go(func() {
			s, err := store.Open(context.Background(), url, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			n, err := s.Migrate(context.Background())
			if err != nil {
				t.Error(err)
			}
			applied <- n
		})
	}
	wg.Wait()
	close(applied)
	total := 0
	for n := range applied {
		total += n
	}
	// Each of the migrations once, by whichever run got the lock first.
	if want := 2; total != want {
		t.Fatalf("migrations applied %d times in all, want %d (each once)", total, want)
	}
}
