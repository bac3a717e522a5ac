package store_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bbsboard/bbs/pkg/store"
	"github.com/bbsboard/bbs/pkg/testenv"
	"gorm.io/gorm"
)

// TestStatementLogsHoldNoValues: a failed statement is logged, with its
// SQL, but with placeholders: the values (a comment, a token hash) never
// reach the logs. A statement that succeeds quickly is not logged at all.
func TestStatementLogsHoldNoValues(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	s, err := store.Open(context.Background(), testenv.PostgresURL(t), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	const secret = "a private comment"
	var n int
	if err := s.DB().Raw("SELECT length(?::text)", secret).Scan(&n).Error; err != nil || n != len(secret) {
		t.Fatalf("quick statement: %v, %d", err, n)
	}
	if buf.Len() != 0 {
		t.Fatalf("a quick statement that succeeded was logged: %s", buf.String())
	}
	if err := s.DB().Exec("INSERT INTO no_such_table (comment) VALUES (?)", secret).Error; err == nil {
		t.Fatal("an insert into a missing table succeeded?")
	}
	out := buf.String()
	if !strings.Contains(out, "SQL executed") || !strings.Contains(out, "INSERT INTO no_such_table") {
		t.Errorf("the failed statement was not logged with its SQL: %s", out)
	}
	if strings.Contains(out, secret) {
		t.Errorf("the log holds a statement's value: %s", out)
	}
}

// explainCounter is the store's dialector, counting the statements whose
// values were interpolated into their text.
type explainCounter struct {
	gorm.Dialector
	n *atomic.Int64
}

func (e explainCounter) Explain(sql string, vars ...any) string {
	e.n.Add(1)
	return e.Dialector.Explain(sql, vars...)
}

// TestStatementsAreNotInterpolated: nothing the store runs while serving
// has its values written into its SQL text when nothing is logged. GORM's
// Raw(...).Scan does so for every statement (its trace recorder asks for
// the text whatever the logger), and a batch's change-log statement has
// hundreds of values: that was 9% of a replica's CPU under a write load.
func TestStatementsAreNotInterpolated(t *testing.T) {
	for name, s := range dialects(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			var n atomic.Int64
			s.DB().Dialector = explainCounter{s.DB().Dialector, &n}
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					if _, _, err := s.Create(ctx, "a comment", []byte("hash")); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			tp, _, err := s.Create(ctx, "another", []byte("hash"))
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Update(ctx, tp.ID, "edited", allow); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Delete(ctx, tp.ID, false, allow); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Page(ctx, 0, 10); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ChangesSince(ctx, 1, 100); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Head(ctx); err != nil {
				t.Fatal(err)
			}
			if got := n.Load(); got != 0 {
				t.Errorf("%d statements had their values interpolated into their text", got)
			}
		})
	}
}
