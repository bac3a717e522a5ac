package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// classify maps a driver error onto the domain's errors: a missing row is
// topic.ErrNotFound, and anything that says the database could not be
// reached, is shutting down or gave up on the transaction (a serialization
// failure, a deadlock) is topic.ErrUnavailable, so the API answers 503
// rather than 500. The original error stays wrapped for the logs.
//
// It is for failures before COMMIT, where nothing was written; a failed
// COMMIT goes through classifyCommit.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("%s: %w", op, topic.ErrNotFound)
	}
	if errors.Is(err, topic.ErrNotFound) || errors.Is(err, topic.ErrForbidden) ||
		errors.Is(err, topic.ErrUnauthorized) || errors.Is(err, topic.ErrInvalid) ||
		errors.Is(err, topic.ErrKeyReused) || errors.Is(err, topic.ErrOutcomeUnknown) ||
		errors.Is(err, errKeyTaken) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "53", "57": // connection exception, insufficient resources, operator intervention
			return fmt.Errorf("%s: %w: %w", op, topic.ErrUnavailable, err)
		case "40": // transaction rollback: serialization failure, deadlock; worth a retry
			return fmt.Errorf("%s: %w: %w", op, topic.ErrUnavailable, err)
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, err)
	}
	// Network errors, timeouts, a closed pool, SQLite busy: the database is
	// not answering, which the caller can retry later.
	return fmt.Errorf("%s: %w: %w", op, topic.ErrUnavailable, err)
}

// classifyCommit maps an error from COMMIT. Whether the write landed is
// known in two cases only:
//
//   - the database answered the COMMIT with an error (a deferred constraint,
//     a serialization failure): it rolled the transaction back;
//   - the COMMIT was never sent (the connection was known dead first,
//     pgconn.SafeToRetry), so the server never committed it.
//
// Those are classified as any failure before COMMIT. Every other error (a
// timeout, the connection closing while the COMMIT was in flight, the
// server terminating the session mid-commit, which can happen after the
// commit record is written) leaves the outcome unknown:
// topic.ErrOutcomeUnknown, never "nothing was written".
//
// SQLite commits inside this process: an error from its COMMIT is its
// answer, and the transaction did not commit.
func (s *Store) classifyCommit(op string, err error) error {
	if s.dialect == "sqlite" || commitRefused(err) {
		return classify(op, err)
	}
	return fmt.Errorf("%s: %w: %w", op, topic.ErrOutcomeUnknown, err)
}

// commitRefused reports a COMMIT error after which the transaction is
// certainly not committed.
func commitRefused(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		severity := pgErr.SeverityUnlocalized
		if severity == "" {
			severity = pgErr.Severity
		}
		switch pgErr.Code[:2] {
		case "08", "57", "58", "XX":
			// The session or the server is going away, or broke: a FATAL
			// after a COMMIT whose record is already written reports the
			// connection's end, not the transaction's.
			return false
		}
		return severity == "ERROR"
	}
	if errors.Is(err, pgconn.ErrConnClosed) {
		// pgx says "conn closed" both when the connection was closed before
		// COMMIT was written and when it closed while the answer was being
		// read (the soak test saw such a COMMIT land): it proves nothing,
		// whatever its SafeToRetry says.
		return false
	}
	if errors.Is(err, pgx.ErrTxCommitRollback) || errors.Is(err, sql.ErrTxDone) {
		// The server answered ROLLBACK; or database/sql had already ended
		// the transaction and sent nothing.
		return true
	}
	return pgconn.SafeToRetry(err)
}
