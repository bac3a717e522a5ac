package store

import (
	"context"
	"testing"

	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestConnClosedIsNotRefused: pgx answers "conn closed" (an error that
// calls itself safe to retry) when the connection closed before a command
// was written, and also when it closed while the answer was being read, so
// a COMMIT that failed with it may have landed. The soak test found such a
// COMMIT reported as "nothing was written"; it must be "outcome unknown".
func TestConnClosedIsNotRefused(t *testing.T) {
	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	_, err = conn.Exec(ctx, "commit").ReadAll()
	if err == nil {
		t.Fatal("exec on a closed connection succeeded")
	}
	if !pgconn.SafeToRetry(err) {
		t.Fatalf("pgx no longer calls %v safe to retry: revisit commitRefused", err)
	}
	if commitRefused(err) {
		t.Fatalf("COMMIT failing with %q taken for certainly not committed", err)
	}
}
