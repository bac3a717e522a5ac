package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/store"
	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/bbsboard/bbs/pkg/wire"
)

// TestDeleteNamesTheTopicThatFillsTheWindow: with a first page of 3,
// deleting the newest topics one by one records, with each delete, the
// topic that slides onto the page; applying the deletes to the page keeps
// it equal to the database's first page at every version.
func TestDeleteNamesTheTopicThatFillsTheWindow(t *testing.T) {
	for name, s := range dialects(t, store.WithWindow(3)) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			var ids []int64
			for i := range 5 {
				_, hash := topic.NewToken()
				tp, _, err := s.Create(ctx, fmt.Sprintf("topic %d", i), hash)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, tp.ID)
			}
			page, err := s.Page(ctx, 0, 3)
			if err != nil {
				t.Fatal(err)
			}
			view := wire.TopicsOf(page.Topics)
			// Delete one outside the page too: nothing slides in.
			for _, id := range []int64{ids[0], ids[4], ids[3], ids[2]} {
				ch, err := s.Delete(ctx, id, false, allow)
				if err != nil || len(ch) != 1 {
					t.Fatalf("delete %d: %+v %v", id, ch, err)
				}
				e := wire.EventOf(ch[0])
				view = wire.ApplyEvent(view, wire.EventName(ch[0].Kind), e, 3)
				want, err := s.Page(ctx, 0, 3)
				if err != nil {
					t.Fatal(err)
				}
				if got, exp := fmt.Sprint(view), fmt.Sprint(wire.TopicsOf(want.Topics)); got != exp {
					t.Fatalf("after deleting %d (fill %+v): view %s, database %s", id, e.Fill, got, exp)
				}
			}
			if len(view) != 1 || view[0].ID != ids[1] {
				t.Fatalf("left %+v, want only topic %d", view, ids[1])
			}
			// The log replays the fill exactly as the write returned it.
			h, err := s.ChangesSince(ctx, 6, 10)
			if err != nil || len(h.Changes) != 3 || h.Changes[0].Fill == nil || h.Changes[0].Fill.ID != ids[1] {
				t.Fatalf("log after 6: %+v %v", h, err)
			}
		})
	}
}

// TestChangesSinceTellsHistory: the read of the log says whether the entry
// at the version asked from is still there and what its stamp is, and
// where the head is, so a replica can tell "up to date" from "pruned past
// me" from "another history".
func TestChangesSinceTellsHistory(t *testing.T) {
	for name, s := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			var stamps []int64
			for range 4 {
				_, hash := topic.NewToken()
				_, ch, err := s.Create(ctx, "x", hash)
				if err != nil {
					t.Fatal(err)
				}
				stamps = append(stamps, ch[0].Stamp)
			}
			h, err := s.ChangesSince(ctx, 2, 10)
			if err != nil || !h.AtFound || h.At != stamps[1] || h.Head != 4 || h.HeadStamp != stamps[3] || len(h.Changes) != 2 {
				t.Fatalf("since 2: %+v %v", h, err)
			}
			if err := s.DB().Exec("DELETE FROM topic_changes WHERE version <= 3").Error; err != nil {
				t.Fatal(err)
			}
			h, err = s.ChangesSince(ctx, 2, 10)
			if err != nil || h.AtFound || h.Head != 4 || len(h.Changes) != 1 || h.Changes[0].Version != 4 {
				t.Fatalf("since 2 after pruning: %+v %v", h, err)
			}
			if v, st, err := s.Head(ctx); err != nil || v != 4 || st != stamps[3] {
				t.Fatalf("head %d %d %v", v, st, err)
			}
		})
	}
}

// TestPruneKeepsWhatIsNeeded: pruning removes only entries that are past
// the count, old by the database's clock, and below the floor the caller
// still needs. Before, it removed entries past the count OR older than the
// age by the replica's clock, so a replica a day ahead emptied the log.
func TestPruneKeepsWhatIsNeeded(t *testing.T) {
	for name, s := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			for range 10 {
				_, hash := topic.NewToken()
				if _, _, err := s.Create(ctx, "x", hash); err != nil {
					t.Fatal(err)
				}
			}
			// Fresh entries: no age says they may go, whatever the count.
			if n, err := s.Prune(ctx, 1, time.Hour, 100); err != nil || n != 0 {
				t.Fatalf("pruned %d fresh entries (%v)", n, err)
			}
			old := time.Now().UTC().Add(-48 * time.Hour)
			if err := s.DB().Exec("UPDATE topic_changes SET committed_at = ?", old).Error; err != nil {
				t.Fatal(err)
			}
			// Old, but a replica still needs 5 and on: only 1..4 go.
			if n, err := s.Prune(ctx, 2, time.Hour, 5); err != nil || n != 4 {
				t.Fatalf("pruned %d, want 4 (%v)", n, err)
			}
			// The count keeps the newest 2 whatever the floor.
			if n, err := s.Prune(ctx, 2, time.Hour, 100); err != nil || n != 4 {
				t.Fatalf("pruned %d, want 4 (%v)", n, err)
			}
			h, err := s.ChangesSince(ctx, 9, 10)
			if err != nil || !h.AtFound || len(h.Changes) != 1 {
				t.Fatalf("left: %+v %v", h, err)
			}
		})
	}
}

// TestRebaseStartsAboveTheFloor: after the database went back in time, a
// rebase moves the version past every version replicas hold, logs a reset
// there and returns the board at that version.
func TestRebaseStartsAboveTheFloor(t *testing.T) {
	for name, s := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			for range 2 {
				_, hash := topic.NewToken()
				if _, _, err := s.Create(ctx, "x", hash); err != nil {
					t.Fatal(err)
				}
			}
			page, c, err := s.Rebase(ctx, 7, 10)
			if err != nil || c.Version != 8 || c.Kind != topic.Reset || page.Version != 8 || page.Stamp != c.Stamp || len(page.Topics) != 2 {
				t.Fatalf("rebase: %+v %+v %v", page, c, err)
			}
			h, err := s.ChangesSince(ctx, 2, 10)
			if err != nil || len(h.Changes) != 1 || h.Changes[0].Kind != topic.Reset || h.Head != 8 {
				t.Fatalf("log: %+v %v", h, err)
			}
			_, hash := topic.NewToken()
			if _, ch, err := s.Create(ctx, "after", hash); err != nil || ch[0].Version != 9 {
				t.Fatalf("write after rebase: %+v %v", ch, err)
			}
		})
	}
}

// TestDeleteScrubsTheLog: once a topic is deleted (soft or purged), its
// text is nowhere in the change log: not in its own entries, not where a
// later delete named it as the topic sliding onto the first page. Before,
// it stayed there for a day and any resume from an older id replayed it.
func TestDeleteScrubsTheLog(t *testing.T) {
	for name, s := range dialects(t, store.WithWindow(2)) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			var ids []int64
			for _, c := range []string{"secret one", "secret two", "three", "four"} {
				_, hash := topic.NewToken()
				tp, _, err := s.Create(ctx, c, hash)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, tp.ID)
			}
			if _, _, err := s.Update(ctx, ids[0], "secret one, edited", allow); err != nil {
				t.Fatal(err)
			}
			// Deleting "four" slides "secret two" onto the page of 2: the
			// delete's entry carries its text as the fill.
			if ch, err := s.Delete(ctx, ids[3], false, allow); err != nil || ch[0].Fill == nil || ch[0].Fill.ID != ids[1] {
				t.Fatalf("delete four: %+v %v", ch, err)
			}
			if _, err := s.Delete(ctx, ids[1], false, allow); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Delete(ctx, ids[0], true, allow); err != nil {
				t.Fatal(err)
			}
			var n int64
			if err := s.DB().Raw("SELECT count(*) FROM topic_changes WHERE comment LIKE 'secret%' OR fill_comment LIKE 'secret%'").Scan(&n).Error; err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Fatalf("%d change-log entries still carry a deleted topic's text", n)
			}
			if err := s.DB().Unscoped().Raw("SELECT count(*) FROM topics WHERE id = ?", ids[0]).Scan(&n).Error; err != nil || n != 0 {
				t.Fatalf("purged row still there (%d, %v)", n, err)
			}
			h, err := s.ChangesSince(ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			// Only "three"'s creation (v3) and the last delete, which had no
			// fill (v8), keep all they had; four was deleted too.
			for _, c := range h.Changes {
				if want := c.Version != 3 && c.Version != 8; c.Redacted != want {
					t.Errorf("v%d %s of %d: redacted %v, want %v", c.Version, c.Kind, c.ID, c.Redacted, want)
				}
			}
		})
	}
}

// TestStoppedWriterReleasesTheVersionLock: a replica that stops in the
// middle of a write (a paused VM, SIGSTOP) holds the version row's lock,
// and every write in the cluster queues behind it. Postgres ends such a
// session once it has sat idle in its transaction for 5 s, and writes go
// on. Before, they answered 503 for as long as the replica stayed stopped
// (the soak test saw it).
func TestStoppedWriterReleasesTheVersionLock(t *testing.T) {
	s := dialects(t)["postgres"]
	ctx := context.Background()
	stopped := s.DB().Begin()
	if err := stopped.Exec("UPDATE bbs_version SET v = v WHERE id = 1").Error; err != nil {
		t.Fatal(err)
	}
	defer stopped.Rollback()
	start := time.Now()
	var err error
	for time.Since(start) < 15*time.Second {
		_, hash := topic.NewToken()
		if _, _, err = s.Create(ctx, "after the stall", hash); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("writes still blocked %v after a writer stopped holding the version row: %v", time.Since(start).Round(time.Second), err)
	}
	t.Logf("writes went on %v after a writer stopped holding the version row", time.Since(start).Round(100*time.Millisecond))
}
