package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/bbsboard/bbs/pkg/store"
	"github.com/bbsboard/bbs/pkg/topic"
)

// TestConcurrentCreatesShareCommits: creates at once are committed in
// batches, on both dialects, and still each gets its own version, logged
// with it; the after-commit callback hears every change exactly once, in
// version order, before its writer is answered.
func TestConcurrentCreatesShareCommits(t *testing.T) {
	for _, dialect := range []string{"postgres", "sqlite"} {
		t.Run(dialect, func(t *testing.T) {
			var h struct {
				mu       sync.Mutex
				versions []int64 // as the callback heard them
				largest  int     // batch
			}
			s := openDialect(t, dialect,
				store.WithAfterCommit(func(cs []topic.Change) {
					h.mu.Lock()
					defer h.mu.Unlock()
					for _, c := range cs {
						h.versions = append(h.versions, c.Version)
					}
				}),
				store.WithBatchObserver(func(n int) {
					h.mu.Lock()
					h.largest = max(h.largest, n)
					h.mu.Unlock()
				}))
			const writers, each = 32, 10
			var wg sync.WaitGroup
			got := make(chan topic.Change, writers*each)
			for w := range writers {
				wg.Go(func() {
					for i := range each {
						_, hash := topic.NewToken()
						tp, cs, err := s.Create(context.Background(), fmt.Sprintf("w%d-%d", w, i), hash)
						if err != nil {
							t.Error(err)
							return
						}
						if len(cs) != 1 || cs[0].ID != tp.ID || cs[0].Topic != tp {
							t.Errorf("create of %+v returned changes %+v", tp, cs)
						}
						h.mu.Lock()
						heardIt := false
						for _, v := range h.versions {
							heardIt = heardIt || v == cs[0].Version
						}
						h.mu.Unlock()
						if !heardIt {
							t.Errorf("version %d answered before the after-commit callback heard it", cs[0].Version)
						}
						got <- cs[0]
					}
				})
			}
			wg.Wait()
			close(got)
			seen := map[int64]bool{}
			for c := range got {
				if seen[c.Version] {
					t.Errorf("version %d given twice", c.Version)
				}
				seen[c.Version] = true
			}
			for v := int64(1); v <= writers*each; v++ {
				if !seen[v] {
					t.Errorf("version %d given to no create", v)
				}
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			for i, v := range h.versions {
				if v != int64(i+1) {
					t.Fatalf("the callback heard version %d in place %d: not in version order, or not once each", v, i+1)
				}
			}
			if h.largest < 2 {
				t.Errorf("largest batch %d: %d creates at once never shared a commit", h.largest, writers)
			}
			hist, err := s.ChangesSince(context.Background(), 0, writers*each)
			if err != nil {
				t.Fatal(err)
			}
			if len(hist.Changes) != writers*each || hist.Head != writers*each {
				t.Errorf("log holds %d changes up to head %d, want %d", len(hist.Changes), hist.Head, writers*each)
			}
			t.Logf("%d creates by %d writers; largest batch %d", writers*each, writers, h.largest)
		})
	}
}
