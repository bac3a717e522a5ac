package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// classify maps a driver error onto the domain's errors: a missing row is
// topic.ErrNotFound, and anything that says the database could not be
// reached or is shutting down is topic.ErrUnavailable, so the API answers
// 503 rather than 500. The original error stays wrapped for the logs.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("%s: %w", op, topic.ErrNotFound)
	}
	if errors.Is(err, topic.ErrNotFound) || errors.Is(err, topic.ErrForbidden) ||
		errors.Is(err, topic.ErrUnauthorized) || errors.Is(err, topic.ErrInvalid) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "53", "57": // connection exception, insufficient resources, operator intervention
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
