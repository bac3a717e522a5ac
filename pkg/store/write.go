package store

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ncruces/go-sqlite3"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// commitTimeout bounds COMMIT on its own: the query timeout covers BEGIN
// and the statements, and a COMMIT sent just before it ran out must still
// get the time to answer. A COMMIT that does not answer within it leaves
// the write's outcome unknown (topic.ErrOutcomeUnknown). A variable only so
// that tests can shorten it.
var commitTimeout = queryTimeout

// rollbackTimeout bounds the ROLLBACK of a write that failed before
// COMMIT; a ROLLBACK that does not answer costs the connection, never the
// outcome (a transaction that was never committed never will be).
const rollbackTimeout = time.Second

// Create stores a new topic. It returns the topic and the change that
// COMMITTED with it (handed to the after-commit callback too). Creates are
// committed in batches (batch.go).
func (s *Store) Create(ctx context.Context, comment string, tokenHash []byte) (topic.Topic, []topic.Change, error) {
	row, change, err := s.create(ctx, topicRow{Comment: comment, TokenHash: tokenHash})
	if err != nil {
		return topic.Topic{}, nil, err
	}
	return row.domain(), []topic.Change{change}, nil
}

// CreateOnce is Create for a request that carries an idempotency key:
// keyHash (topic.KeyHash) is stored with the topic under a unique index, so
// however often the request is retried, on any replica, at most one topic
// is made for it. When one already exists, CreateOnce returns it with
// replayed set and no changes (nothing was written, nothing is to be
// published), provided it was made with the same comment and token hash;
// otherwise the key is being reused for something else (topic.ErrKeyReused).
// A topic made with the key and deleted since answers topic.ErrNotFound.
//
// Two attempts at once with one key: the second INSERT waits on the unique
// index for the first's transaction (Postgres), then fails with a unique
// violation if the first committed, and the existing row is read instead.
// SQLite has one writer at a time, so the second simply finds the row.
func (s *Store) CreateOnce(ctx context.Context, comment string, tokenHash, keyHash []byte) (t topic.Topic, changes []topic.Change, replayed bool, err error) {
	row, change, err := s.create(ctx, topicRow{Comment: comment, TokenHash: tokenHash, IdemHash: keyHash})
	if err == nil {
		return row.domain(), []topic.Change{change}, false, nil
	}
	if !errors.Is(err, errKeyTaken) {
		return topic.Topic{}, nil, false, err
	}
	existing, err := s.byKeyHash(ctx, keyHash)
	if err != nil {
		return topic.Topic{}, nil, false, err
	}
	switch {
	case existing.Comment != comment || !bytes.Equal(existing.TokenHash, tokenHash):
		return topic.Topic{}, nil, false, fmt.Errorf("create topic: %w", topic.ErrKeyReused)
	case existing.DeletedAt.Valid:
		return topic.Topic{}, nil, false, fmt.Errorf("create topic: the topic made with this idempotency key was deleted since: %w", topic.ErrNotFound)
	}
	return existing.domain(), nil, true, nil
}

// errKeyTaken is a create whose idempotency key is already stored.
var errKeyTaken = errors.New("idempotency key already used")

// byKeyHash reads the topic stored with an idempotency key's hash, deleted
// or not.
func (s *Store) byKeyHash(ctx context.Context, keyHash []byte) (topicRow, error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	var row topicRow
	err := s.db.WithContext(ctx).Unscoped().Where("idem_hash = ?", keyHash).Take(&row).Error
	return row, classify("read topic by idempotency key", err)
}

// isUniqueViolation reports a write refused by a unique index. On topics
// the only one a write can hit is the idempotency key's (ids come from the
// database).
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	// The SQLite driver's errors match their extended result code
	// (SQLITE_CONSTRAINT_UNIQUE) under errors.Is. TestCreateOnce/sqlite
	// fails if this stops matching.
	return errors.Is(err, sqlite3.CONSTRAINT_UNIQUE)
}

// nullBytes is a BLOB/bytea column that is NULL when empty: the partial
// unique index on topics.idem_hash must not see topics created without a
// key (an empty blob would be a value, and the second such topic would
// collide with the first).
type nullBytes []byte

// Value implements driver.Valuer.
func (b nullBytes) Value() (driver.Value, error) {
	if len(b) == 0 {
		return nil, nil
	}
	return []byte(b), nil
}

// Scan implements sql.Scanner.
func (b *nullBytes) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*b = nil
	case []byte:
		*b = bytes.Clone(v)
	case string:
		*b = []byte(v)
	default:
		return fmt.Errorf("idem_hash: cannot scan %T", src)
	}
	return nil
}

// Update replaces a live topic's comment once authorize accepts the
// topic's stored token hash.
func (s *Store) Update(ctx context.Context, id int64, comment string, authorize func(tokenHash []byte) error) (topic.Topic, []topic.Change, error) {
	var row topicRow
	changes, err := s.write(ctx, "update topic", func(tx *gorm.DB) error {
		if err := lockTopic(tx, id, &row); err != nil {
			return err
		}
		if err := authorize(row.TokenHash); err != nil {
			return err
		}
		return tx.Model(&row).Update("comment", comment).Error
	})
	if err != nil {
		return topic.Topic{}, nil, err
	}
	return row.domain(), changes, nil
}

// Delete soft-deletes a live topic, or with purge removes the row for good
// (purge also reaches topics that are already soft-deleted). Either way the
// topic's text leaves the change log in the same transaction (a deleted
// topic's text must not come back through a replay); the entries stay, as
// markers of their versions, and can no longer be replayed (a resume across
// them gets a snapshot). A soft-deleted row keeps its text for moderation,
// on no public path.
func (s *Store) Delete(ctx context.Context, id int64, purge bool, authorize func(tokenHash []byte) error) ([]topic.Change, error) {
	return s.write(ctx, "delete topic", func(tx *gorm.DB) error {
		if purge {
			tx = tx.Unscoped()
		}
		var row topicRow
		if err := lockTopic(tx, id, &row); err != nil {
			return err
		}
		if err := authorize(row.TokenHash); err != nil {
			return err
		}
		if err := tx.Exec("UPDATE topic_changes SET comment = NULL WHERE topic_id = ? AND comment IS NOT NULL", id).Error; err != nil {
			return fmt.Errorf("scrub the change log: %w", err)
		}
		if err := tx.Delete(&row).Error; err != nil {
			return err
		}
		// Only now, under the version row's lock (the delete's hook took it),
		// is every delete that named this topic as its fill committed.
		if err := tx.Exec("UPDATE topic_changes SET fill_comment = NULL WHERE fill_id = ? AND fill_comment IS NOT NULL", id).Error; err != nil {
			return fmt.Errorf("scrub the change log: %w", err)
		}
		return nil
	})
}

// lockTopic reads the row FOR UPDATE so a concurrent edit or delete of the
// same topic waits instead of acting on what it read before ours committed.
func lockTopic(tx *gorm.DB, id int64, row *topicRow) error {
	return tx.Clauses(clause.Locking{Strength: "UPDATE"}).First(row, id).Error
}

// write runs fn in a transaction whose hooks queue their changes in an
// outbox, and hands the queued changes to the after-commit callback, and
// returns them, only once COMMIT succeeded. On rollback they are dropped
// with the transaction. Every write goes through here, so no change can
// commit unannounced.
//
// What a caller is told must be true, so write keeps apart what can fail:
//
//   - BEGIN and fn run under the query timeout and the caller's context.
//     Any failure there rolls back: nothing was written, certainly
//     (topic.ErrUnavailable when the database is the cause).
//   - COMMIT gets its own bound (commitTimeout) and is not cut short by the
//     caller going away: once it is sent, its answer is what decides. If
//     the database answers with an error, or the COMMIT was never sent,
//     nothing was written. If no answer comes (a timeout, the connection
//     lost while committing), the write may or may not have landed:
//     topic.ErrOutcomeUnknown. Then it may have landed unannounced; every
//     replica's periodic version check finds it in the change log.
//
// The transaction's own context (the one BEGIN and COMMIT use) is
// therefore not the statements' context: it outlives fn, and is cancelled
// by fn's deadline until fn is done, then by the COMMIT's.
func (s *Store) write(ctx context.Context, op string, fn func(tx *gorm.DB) error) ([]topic.Change, error) {
	stmtCtx, cancel := bounded(ctx)
	defer cancel()
	stmtCtx, ob := withOutbox(stmtCtx, s.window)
	txCtx, cancelTx := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelTx()
	beforeCommit := context.AfterFunc(stmtCtx, cancelTx)

	tx := s.db.WithContext(txCtx).Begin()
	if tx.Error != nil {
		beforeCommit()
		return nil, failedBeforeCommit(ctx, op, tx.Error)
	}
	sent := false
	defer func() {
		if !sent { // fn failed or panicked: nothing may commit
			t := time.AfterFunc(rollbackTimeout, cancelTx)
			tx.Rollback()
			t.Stop()
		}
	}()
	stmt := tx.WithContext(stmtCtx)
	err := fn(stmt)
	if err == nil {
		err = ob.flush(stmt)
	}
	if err != nil {
		beforeCommit()
		return nil, failedBeforeCommit(ctx, op, err)
	}
	if !beforeCommit() {
		// The deadline or the caller ended fn's time just now: the
		// transaction's context is cancelled, and database/sql rolls it
		// back without sending COMMIT.
		return nil, classify(op, stmtCtx.Err())
	}
	sent = true
	t := time.AfterFunc(commitTimeout, cancelTx)
	err = tx.Commit().Error
	t.Stop()
	if err != nil {
		if txCtx.Err() != nil {
			err = fmt.Errorf("no answer within %v: %w", commitTimeout, err)
		}
		return nil, s.classifyCommit(op+": commit", err)
	}
	if s.afterCommit != nil && len(ob.changes) > 0 {
		s.afterCommit(ob.changes)
	}
	return ob.changes, nil
}

// failedBeforeCommit classifies a failure of BEGIN or of fn. A statement
// cut short by the transaction's context reports context.Canceled, which
// classify takes for the caller having gone away; unless the caller did,
// it was the query timeout: the database did not answer in time.
func failedBeforeCommit(ctx context.Context, op string, err error) error {
	if ctx.Err() == nil && errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w: no answer within %v: %v", op, topic.ErrUnavailable, queryTimeout, err)
	}
	return classify(op, err)
}
