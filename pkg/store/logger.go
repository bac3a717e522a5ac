package store

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// slowStatement is when a statement is logged for its time alone.
const slowStatement = 500 * time.Millisecond

// quietLogger is GORM's slog logger, asked only about statements it will
// log: GORM's own calls its fc (which interpolates every value into the
// SQL text with regular expressions) for every statement, logged or not,
// and that was 6% of a replica's CPU under a write load (a batch's
// statement has hundreds of values). Statements are logged with
// placeholders, never values: no comment or token hash reaches the logs.
//
// For the same reason the store reads a raw statement's rows with Find,
// never Scan: GORM's Scan traces through a recorder of its own that calls
// fc for every statement, whatever the logger
// (TestStatementsAreNotInterpolated).
type quietLogger struct {
	logger.Interface
}

func newLogger(log *slog.Logger) quietLogger {
	return quietLogger{logger.NewSlogLogger(log.With("component", "gorm"), logger.Config{
		SlowThreshold:             slowStatement,
		LogLevel:                  logger.Warn,
		IgnoreRecordNotFoundError: true,
		ParameterizedQueries:      true,
	})}
}

// LogMode keeps the wrapper around whatever GORM makes of the level.
func (l quietLogger) LogMode(level logger.LogLevel) logger.Interface {
	return quietLogger{l.Interface.LogMode(level)}
}

// ParamsFilter drops the values, as the wrapped logger is configured to
// (GORM looks for this method on the logger it was given).
func (l quietLogger) ParamsFilter(ctx context.Context, sql string, params ...any) (string, []any) {
	return sql, nil
}

// Trace passes on only what the wrapped logger will write at Warn: errors
// (a missing row is not one) and slow statements.
func (l quietLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	failed := err != nil && !errors.Is(err, gorm.ErrRecordNotFound)
	if !failed && time.Since(begin) <= slowStatement {
		return
	}
	l.Interface.Trace(ctx, begin, fc, err)
}
