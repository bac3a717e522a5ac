package store_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/bbsboard/bbs/pkg/store"
	"github.com/bbsboard/bbs/pkg/testenv"
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
