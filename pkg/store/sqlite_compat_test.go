package store_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/store"
)

// TestSQLiteReadsTimesTheOlderDriverWrote: a bbs.db written before the
// switch to ncruces/go-sqlite3 holds its times as glebarez/go-sqlite (from
// modernc) wrote them, "2006-01-02 15:04:05.999999999-07:00"; the new
// driver writes RFC 3339. A board kept across the upgrade must still load.
func TestSQLiteReadsTimesTheOlderDriverWrote(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "bbs.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const older = "2006-01-02 15:04:05.999999999-07:00"
	created := time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC)
	updated := created.Add(90 * time.Minute)
	if err := s.DB().Exec("INSERT INTO topics (comment, token_hash, created_at, updated_at) VALUES (?, ?, ?, ?)",
		"written by the older driver", []byte{1}, created.Format(older), updated.Format(older)).Error; err != nil {
		t.Fatal(err)
	}
	page, err := s.Page(ctx, 0, 10)
	if err != nil {
		t.Fatalf("page over a topic with the older driver's times: %v", err)
	}
	if len(page.Topics) != 1 {
		t.Fatalf("page = %+v, want the one topic", page)
	}
	got := page.Topics[0]
	if !got.CreatedAt.Equal(created) || !got.UpdatedAt.Equal(updated) {
		t.Fatalf("times read back as %v / %v, want %v / %v", got.CreatedAt, got.UpdatedAt, created, updated)
	}
}
