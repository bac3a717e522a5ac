package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/bbsboard/bbs/pkg/topic"
	"gorm.io/gorm"
)

// GORM runs after-hooks INSIDE the write's transaction, before COMMIT. A
// notice published from a hook would let another replica re-read the old
// rows and cache them. So the hooks only record the change (in the change
// log, in the same transaction) and queue it in an outbox carried by the
// statement's context; the code that owns the transaction hands the outbox
// on only after Commit returned, and drops it on rollback.

type outboxKey struct{}

type outbox struct {
	window  int // the first page's size, for the topic a delete slides in
	changes []topic.Change
}

func withOutbox(ctx context.Context, window int) (context.Context, *outbox) {
	ob := &outbox{window: window}
	return context.WithValue(ctx, outboxKey{}, ob), ob
}

// errNoOutbox stops a topic write that does not go through the store's own
// transactions: its change could never be published, so it must not commit.
var errNoOutbox = errors.New("topic written outside store transaction: its change notice would be lost")

// AfterCreate is the after-save hook of a new topic.
func (r *topicRow) AfterCreate(tx *gorm.DB) error { return recordChange(tx, topic.Created, r) }

// AfterUpdate is the after-save hook of an edited topic.
func (r *topicRow) AfterUpdate(tx *gorm.DB) error { return recordChange(tx, topic.Updated, r) }

// AfterDelete is the after-delete hook (soft delete and purge alike).
func (r *topicRow) AfterDelete(tx *gorm.DB) error { return recordChange(tx, topic.Deleted, r) }

// recordChange assigns the change its version and writes it to the log.
//
// Why the order is safe: the version is the single row of bbs_version,
// bumped with UPDATE ... RETURNING inside the write's own transaction (on
// Postgres in the same statement that writes the log entry). The
// UPDATE takes that row's lock and holds it until COMMIT or ROLLBACK. A
// second writer, on any replica, blocks on the same row until the first
// transaction ends; when it proceeds, Postgres (READ COMMITTED re-reads a
// row whose lock holder committed) hands it the committed value plus one.
// So versions are gap-free and version order is commit order: when any
// connection can see version V committed, every version below V is already
// committed too. A rollback undoes the bump with everything else, leaving
// no hole. Two writers committing "at the same moment" are in fact
// serialised on that lock; whichever got it first has the lower version
// and committed first. A replica applies changes strictly in version
// order and fetches any version it has not seen from the log, so it can
// neither reorder nor skip one. SQLite has a single writer, which gives
// the same order trivially.
func recordChange(tx *gorm.DB, kind topic.Kind, r *topicRow) error {
	ob, ok := tx.Statement.Context.Value(outboxKey{}).(*outbox)
	if !ok {
		return errNoOutbox
	}
	c := changeRow{Kind: string(kind), TopicID: r.ID, CommitedAt: time.Now().UTC(), Stamp: newStamp()}
	if kind != topic.Deleted {
		created, updated := r.CreatedAt.UTC(), r.UpdatedAt.UTC()
		c.Comment, c.CreatedAt, c.UpdatedAt = &r.Comment, &created, &updated
	}
	db := tx.Session(&gorm.Session{NewDB: true})
	var err error
	switch {
	case kind == topic.Deleted:
		err = bumpFillThenLog(db, &c, ob.window)
	case tx.Dialector.Name() == "postgres":
		err = bumpAndLog(db, &c)
	default:
		err = bumpThenLog(db, &c)
	}
	if err != nil {
		return err
	}
	ob.changes = append(ob.changes, c.domain())
	return nil
}

// newStamp returns a random non-zero stamp for a change.
func newStamp() int64 {
	for {
		if v := rand.Int64(); v != 0 {
			return v
		}
	}
}

// bumpAndLog bumps the version and logs the change in one statement. The
// version row stays locked from here to COMMIT, so every writer in the
// cluster waits for that span: one round trip less in it is throughput.
// committed_at is the database's clock (its column default), so that no
// replica's clock can make pruning by age remove what it should keep.
func bumpAndLog(db *gorm.DB, c *changeRow) error {
	err := db.Raw(`WITH bumped AS (UPDATE bbs_version SET v = v + 1, stamp = ?::bigint WHERE id = 1 RETURNING v)
INSERT INTO topic_changes (version, kind, topic_id, comment, created_at, updated_at, stamp)
SELECT v, ?::text, ?::bigint, ?::text, ?::timestamptz, ?::timestamptz, ?::bigint FROM bumped RETURNING version`,
		c.Stamp, c.Kind, c.TopicID, c.Comment, c.CreatedAt, c.UpdatedAt, c.Stamp).Scan(&c.Version).Error
	if err != nil {
		return fmt.Errorf("bump version and log change: %w", err)
	}
	if c.Version == 0 {
		return errNoVersionRow
	}
	return nil
}

var errNoVersionRow = errors.New("bump version: bbs_version row missing (run bbs migrate)")

// bump takes the version row's lock and the next version.
func bump(db *gorm.DB, c *changeRow) error {
	if err := db.Raw("UPDATE bbs_version SET v = v + 1, stamp = ? WHERE id = 1 RETURNING v", c.Stamp).Scan(&c.Version).Error; err != nil {
		return fmt.Errorf("bump version: %w", err)
	}
	if c.Version == 0 {
		return errNoVersionRow
	}
	return nil
}

// logChange writes the change log entry. On Postgres committed_at is left
// to the column default, the database's clock.
func logChange(db *gorm.DB, c *changeRow) error {
	q := db
	if db.Dialector.Name() == "postgres" {
		q = db.Omit("committed_at")
	}
	if err := q.Create(c).Error; err != nil {
		return fmt.Errorf("log change %d: %w", c.Version, err)
	}
	return nil
}

// bumpThenLog is bumpAndLog in two statements, for SQLite, whose WITH
// clauses cannot change rows (and whose single writer makes the span
// moot).
func bumpThenLog(db *gorm.DB, c *changeRow) error {
	if err := bump(db, c); err != nil {
		return err
	}
	return logChange(db, c)
}

// bumpFillThenLog logs a delete with the topic that slides into the first
// page in its place: the window-th newest live topic once the delete is
// done. If the deleted topic was on the first page, that is the one that
// now ends it; if not, it is already the last one there and nobody adds it
// twice. Every replica and client applies the same entry, so all hold the
// same first page without reading the database (DESIGN.md, "Window").
//
// The read must come after the bump: from then on the version row's lock
// keeps every other write out until COMMIT, so the row read is the board
// exactly at this version. Read before it, a delete committing in between
// could leave us naming a topic that is already gone.
func bumpFillThenLog(db *gorm.DB, c *changeRow, window int) error {
	if err := bump(db, c); err != nil {
		return err
	}
	if window > 0 {
		var fill []topicRow
		if err := db.Order("id DESC").Offset(window - 1).Limit(1).Find(&fill).Error; err != nil {
			return fmt.Errorf("read the topic that fills the first page: %w", err)
		}
		if len(fill) == 1 {
			f := fill[0]
			created, updated := f.CreatedAt.UTC(), f.UpdatedAt.UTC()
			c.FillID, c.FillComment, c.FillCreatedAt, c.FillUpdatedAt = &f.ID, &f.Comment, &created, &updated
		}
	}
	return logChange(db, c)
}
