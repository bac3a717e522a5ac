package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"gorm.io/gorm"
)

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
		c.Stamp, c.Kind, c.TopicID, c.Comment, c.CreatedAt, c.UpdatedAt, c.Stamp).Find(&c.Version).Error
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
	if err := db.Raw("UPDATE bbs_version SET v = v + 1, stamp = ? WHERE id = 1 RETURNING v", c.Stamp).Find(&c.Version).Error; err != nil {
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
// same first page without reading the database (docs/ARCHITECTURE.md, "The window").
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

// Why the order is safe. The version is the single row of bbs_version,
// bumped with UPDATE ... RETURNING inside the write's own transaction (on
// Postgres in the same statement that writes the log entries). The UPDATE
// takes that row's lock and holds it until COMMIT or ROLLBACK. A second
// writer, on any replica, blocks on the same row until the first
// transaction ends; when it proceeds, Postgres (READ COMMITTED re-reads a
// row whose lock holder committed) hands it the committed value plus its
// own count. So versions are gap-free and version order is commit order:
// when any connection can see version V committed, every version below V
// is already committed too. A rollback undoes the bump with everything
// else, leaving no hole. Two writers committing "at the same moment" are
// in fact serialised on that lock; whichever got it first has the lower
// versions and committed first.
//
// A batch (batch.go) takes k versions at once, v-k+1 .. v, in the order of
// its rows, and all of them become visible at the one COMMIT: no
// connection can see some of a batch's versions and not the others, and
// everything below v-k+1 committed before the batch took the lock. So a
// batch is, to every reader, k writes committed back to back by one writer
// holding the lock, and the rule above holds for each of them. Batches of
// different replicas are ordered by the same lock as single writes are.
//
// A replica applies changes strictly in version order and fetches any
// version it has not seen from the log, so it can neither reorder nor skip
// one. SQLite has a single writer, which gives the same order trivially.

// flush gives the outbox's creates their versions and logs them, as the
// last statement of the write before COMMIT: from here to COMMIT the
// transaction holds the version lock, so nothing slow may follow it.
func (ob *outbox) flush(tx *gorm.DB) error {
	if len(ob.created) == 0 {
		return nil
	}
	db := tx.Session(&gorm.Session{NewDB: true})
	var err error
	switch {
	case len(ob.created) == 1 && db.Dialector.Name() == "postgres":
		err = bumpAndLog(db, &ob.created[0])
	case db.Dialector.Name() == "postgres":
		err = bumpManyAndLog(db, ob.created)
	default:
		err = bumpManyThenLog(db, ob.created)
	}
	if err != nil {
		return err
	}
	for i := range ob.created {
		ob.changes = append(ob.changes, ob.created[i].domain())
	}
	ob.created = nil
	return nil
}

// bumpManyAndLog is bumpAndLog for a batch: one bump by the batch's size
// and one insert of its log entries, the i-th row getting version
// v-k+i. The version row keeps the stamp of the batch's last change, the
// newest version.
func bumpManyAndLog(db *gorm.DB, cs []changeRow) error {
	k := len(cs)
	var q strings.Builder
	q.WriteString(`WITH bumped AS (UPDATE bbs_version SET v = v + ?::bigint, stamp = ?::bigint WHERE id = 1 RETURNING v)
INSERT INTO topic_changes (version, kind, topic_id, comment, created_at, updated_at, stamp)
SELECT bumped.v - ?::bigint + x.ord, x.kind, x.topic_id, x.comment, x.created_at, x.updated_at, x.stamp
FROM bumped, (VALUES `)
	args := make([]any, 0, 3+6*k)
	args = append(args, k, cs[k-1].Stamp, k)
	for i := range cs {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?::bigint, ?::text, ?::bigint, ?::text, ?::timestamptz, ?::timestamptz, ?::bigint)")
		c := &cs[i]
		args = append(args, i+1, c.Kind, c.TopicID, c.Comment, c.CreatedAt, c.UpdatedAt, c.Stamp)
	}
	q.WriteString(`) AS x(ord, kind, topic_id, comment, created_at, updated_at, stamp)
RETURNING version, topic_id`)
	var got []struct {
		Version int64
		TopicID int64
	}
	if err := db.Raw(q.String(), args...).Find(&got).Error; err != nil {
		return fmt.Errorf("bump version and log %d changes: %w", k, err)
	}
	if len(got) != k {
		if len(got) == 0 {
			return errNoVersionRow
		}
		return fmt.Errorf("bump version and log %d changes: %d logged", k, len(got))
	}
	// RETURNING gives no order: match by topic (each create has its own).
	at := make(map[int64]int64, k)
	for _, g := range got {
		at[g.TopicID] = g.Version
	}
	for i := range cs {
		cs[i].Version = at[cs[i].TopicID]
	}
	return nil
}

// bumpManyThenLog is bumpManyAndLog in two statements, for SQLite.
func bumpManyThenLog(db *gorm.DB, cs []changeRow) error {
	k := len(cs)
	var v int64
	if err := db.Raw("UPDATE bbs_version SET v = v + ?, stamp = ? WHERE id = 1 RETURNING v", k, cs[k-1].Stamp).Find(&v).Error; err != nil {
		return fmt.Errorf("bump version: %w", err)
	}
	if v == 0 {
		return errNoVersionRow
	}
	for i := range cs {
		cs[i].Version = v - int64(k) + int64(i) + 1
	}
	if err := db.Create(&cs).Error; err != nil {
		return fmt.Errorf("log %d changes: %w", k, err)
	}
	return nil
}
