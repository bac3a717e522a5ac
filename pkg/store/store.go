// Package store provides the board's persistence through GORM: Postgres in
// production, an embedded SQLite file for a one-command local run. It owns
// the write transactions, so it is also where versions are assigned and
// where change notices wait until COMMIT before anyone may publish them.
package store

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bbsboard/bbs/pkg/redact"
	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/ncruces/go-sqlite3/gormlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// queryTimeout bounds every call to the database. A database that stops
// answering (a partition, a hung server) must turn into a quick 503 and a
// retried catch-up, not a request or a feed loop that waits forever: pgx
// has no timeout of its own.
const queryTimeout = 3 * time.Second

// bounded gives ctx the query timeout.
func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, queryTimeout)
}

// Store reads and writes topics.
type Store struct {
	db      *gorm.DB
	dialect string // "postgres" or "sqlite"
	window  int    // the first page's size (SNAPSHOT_LIMIT)
	queries atomic.Int64

	afterCommit  func([]topic.Change) // WithAfterCommit
	observeBatch func(size int)       // WithBatchObserver

	creates       chan *createReq // to the committer (batch.go); unbuffered
	closing       <-chan struct{} // closed by Close: no new create is taken
	stopCommitter context.CancelFunc
	committerDone chan struct{}
}

// Option tunes a Store.
type Option func(*Store)

// WithWindow sets the size of the first page (SNAPSHOT_LIMIT, default
// 100): a delete records the topic that slides into it. Every replica must
// use the same size.
func WithWindow(n int) Option {
	return func(s *Store) {
		if n > 0 {
			s.window = n
		}
	}
}

// WithAfterCommit hands every write's changes, in version order, to fn
// once its transaction has committed, and only then: this is where change
// notices start (feed.Publish). fn runs on the writer's or the batch's
// goroutine before any writer is answered, so it must not block.
func WithAfterCommit(fn func([]topic.Change)) Option {
	return func(s *Store) { s.afterCommit = fn }
}

// WithBatchObserver tells fn the size of every batch of creates committed.
func WithBatchObserver(fn func(size int)) Option {
	return func(s *Store) { s.observeBatch = fn }
}

// Open connects to databaseURL: a postgres:// URL, or "sqlite:PATH" (an
// empty URL means sqlite:bbs.db). It does not migrate; see Migrate.
func Open(ctx context.Context, databaseURL string, log *slog.Logger, opts ...Option) (*Store, error) {
	cfg := &gorm.Config{
		// Every topic write runs in a transaction the store opens itself, so
		// GORM's per-statement transaction would only add round trips.
		SkipDefaultTransaction: true,
		// Open must not need the database: a replica started while it is
		// unreachable waits for it (not ready) instead of exiting.
		DisableAutomaticPing: true,
		// Postgres keeps microseconds; truncating here makes the topic a write
		// returns identical to the one read back later.
		NowFunc: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		Logger:  newLogger(log),
	}
	s := &Store{window: 100}
	for _, o := range opts {
		o(s)
	}
	var dial gorm.Dialector
	switch {
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		s.dialect = "postgres"
		dial = postgres.Open(withSessionBounds(databaseURL))
	case databaseURL == "", strings.HasPrefix(databaseURL, "sqlite:"):
		s.dialect = "sqlite"
		path := strings.TrimPrefix(strings.TrimPrefix(databaseURL, "sqlite:"), "//")
		if path == "" {
			path = "bbs.db"
		}
		// ncruces/go-sqlite3: SQLite compiled to Go (no cgo, so the binary
		// stays static), maintained, with a GORM dialector of its own. Its
		// transactions begin IMMEDIATE (the write lock is taken at BEGIN,
		// not on the first write, so two writers never deadlock upgrading).
		dial = gormlite.Open("file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	default:
		return nil, fmt.Errorf("open store: DATABASE_URL must be postgres://... or sqlite:PATH, got %q", redact.URL(databaseURL))
	}
	db, err := gorm.Open(dial, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if s.dialect == "sqlite" {
		// One connection: SQLite has one writer anyway, and a single
		// connection makes "database is locked" impossible.
		sqlDB.SetMaxOpenConns(1)
	} else {
		sqlDB.SetMaxOpenConns(20)
		sqlDB.SetMaxIdleConns(20)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	s.db = db
	if err := s.countQueries(); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	ctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.creates, s.closing, s.stopCommitter = make(chan *createReq), ctx.Done(), stop
	s.committerDone = make(chan struct{})
	go s.committer(ctx)
	return s, nil
}

// countQueries counts every statement GORM sends, so the cost of a write
// (and the absence of reads on cached paths) can be measured, not assumed.
func (s *Store) countQueries() error {
	count := func(*gorm.DB) { s.queries.Add(1) }
	cb := s.db.Callback()
	for _, err := range []error{
		cb.Create().Before("gorm:create").Register("bbs:count", count),
		cb.Query().Before("gorm:query").Register("bbs:count", count),
		cb.Update().Before("gorm:update").Register("bbs:count", count),
		cb.Delete().Before("gorm:delete").Register("bbs:count", count),
		cb.Row().Before("gorm:row").Register("bbs:count", count),
		cb.Raw().Before("gorm:raw").Register("bbs:count", count),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// Queries is the number of SQL statements sent so far (BEGIN and COMMIT
// not included).
func (s *Store) Queries() int64 { return s.queries.Load() }

// Close stops taking creates, lets the batch in flight end, and releases
// the connections.
func (s *Store) Close() error {
	s.stopCommitter()
	<-s.committerDone
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	ctx, cancel := bounded(ctx)
	defer cancel()
	if err := sqlDB.PingContext(ctx); err != nil {
		return classify("ping", err)
	}
	return nil
}

// DB exposes the GORM handle, for tests that need to reach inside a write
// (holding a transaction open before COMMIT, say).
func (s *Store) DB() *gorm.DB { return s.db }

// Dialect is "postgres" or "sqlite".
func (s *Store) Dialect() string { return s.dialect }

// idleInTransaction is how long Postgres lets one of our sessions sit
// idle inside a transaction before it ends the session. A write's
// statements follow each other at once (each bounded by queryTimeout); a
// session idle longer belongs to a replica that stopped mid-write (a
// paused VM, SIGSTOP, a partition), and while it holds the version row's
// lock every write in the cluster waits. Ending it releases the lock.
const idleInTransaction = 5 * time.Second

// withSessionBounds adds idleInTransaction to a postgres URL's session
// parameters, unless the operator set it.
func withSessionBounds(databaseURL string) string {
	if strings.Contains(databaseURL, "idle_in_transaction_session_timeout") {
		return databaseURL
	}
	sep := "?"
	if strings.Contains(databaseURL, "?") {
		sep = "&"
	}
	return databaseURL + sep + "idle_in_transaction_session_timeout=" + strconv.FormatInt(idleInTransaction.Milliseconds(), 10)
}
