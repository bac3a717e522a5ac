package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/bbsboard/bbs/pkg/topic"
	"gorm.io/gorm"
)

const selectHead = "SELECT v, stamp FROM bbs_version WHERE id = 1"

// head is the latest committed version and the stamp of its change.
type head struct {
	V     int64
	Stamp int64
}

// Page returns up to limit live topics, newest first, with ids below before
// (0: from the newest), and the version they were read at. Both come from
// one database snapshot, so the page is exactly the board at that version.
func (s *Store) Page(ctx context.Context, before int64, limit int) (topic.Page, error) {
	var page topic.Page
	err := s.readTx(ctx, func(tx *gorm.DB) error {
		var err error
		page, err = readPage(tx, before, limit)
		return err
	})
	return page, classify("read topics", err)
}

func readPage(tx *gorm.DB, before int64, limit int) (topic.Page, error) {
	var h head
	if err := tx.Raw(selectHead).Find(&h).Error; err != nil {
		return topic.Page{}, err
	}
	q := tx.Order("id DESC").Limit(limit)
	if before > 0 {
		q = q.Where("id < ?", before)
	}
	var rows []topicRow
	if err := q.Find(&rows).Error; err != nil {
		return topic.Page{}, err
	}
	page := topic.Page{Version: h.V, Stamp: h.Stamp, Topics: make([]topic.Topic, len(rows))}
	for i := range rows {
		page.Topics[i] = rows[i].domain()
	}
	return page, nil
}

// ChangesSince reads the change log after version (up to max entries, in
// order) together with the database's head and the stamp of the entry at
// version itself, all from one snapshot. Versions commit in order (see
// recordChange), so the entries have no holes; they start later than
// version+1 only when the log was pruned past it. The caller compares At
// with what it applied at version to know that it shares the database's
// history, and Head with the last entry to know that it is complete.
func (s *Store) ChangesSince(ctx context.Context, version int64, max int) (topic.History, error) {
	var h topic.History
	err := s.readTx(ctx, func(tx *gorm.DB) error {
		var hd head
		if err := tx.Raw(selectHead).Find(&hd).Error; err != nil {
			return err
		}
		h.Head, h.HeadStamp = hd.V, hd.Stamp
		var rows []changeRow
		if err := tx.Where("version >= ?", version).Order("version").Limit(max + 1).Find(&rows).Error; err != nil {
			return err
		}
		if len(rows) > 0 && rows[0].Version == version {
			h.At, h.AtFound = rows[0].Stamp, true
			rows = rows[1:]
		} else if len(rows) > max {
			rows = rows[:max]
		}
		h.Changes = make([]topic.Change, len(rows))
		for i := range rows {
			h.Changes[i] = rows[i].domain()
		}
		return nil
	})
	return h, classify("read change log", err)
}

// Head returns the latest committed version and the stamp of its change.
func (s *Store) Head(ctx context.Context) (version, stamp int64, err error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	var h head
	err = s.db.WithContext(ctx).Raw(selectHead).Find(&h).Error
	return h.V, h.Stamp, classify("read version", err)
}

// Version returns the latest committed version.
func (s *Store) Version(ctx context.Context) (int64, error) {
	v, _, err := s.Head(ctx)
	return v, err
}

// Prune bounds the change log. It removes an entry only when all of these
// hold: more than keep versions separate it from the newest; it is older
// than maxAge by the database's own clock (so no replica's clock, however
// wrong, can empty the log); and it is below floor, the oldest version the
// caller knows to be still needed (its own, the shared cache's). A replica
// or client that needs a pruned entry gets a snapshot instead.
func (s *Store) Prune(ctx context.Context, keep int64, maxAge time.Duration, floor int64) (int64, error) {
	v, err := s.Version(ctx)
	if err != nil {
		return 0, err
	}
	below := min(v-keep, floor-1)
	if below < 1 {
		return 0, nil
	}
	ctx, cancel := bounded(ctx)
	defer cancel()
	var res *gorm.DB
	if s.dialect == "postgres" {
		// Entries a write has locked (a delete scrubbing a topic's text)
		// are skipped, not waited for: the next round takes them. Waiting
		// would hold the write, and with it every write in the cluster
		// queued on the version row, or deadlock with it.
		res = s.db.WithContext(ctx).Exec(`DELETE FROM topic_changes WHERE version IN (
SELECT version FROM topic_changes WHERE version <= ? AND committed_at < now() - make_interval(secs => ?)
FOR UPDATE SKIP LOCKED)`, below, maxAge.Seconds())
	} else {
		// One process owns a SQLite file: its clock is the database's, and
		// it has one writer.
		res = s.db.WithContext(ctx).Where("version <= ? AND committed_at < ?", below, time.Now().UTC().Add(-maxAge)).Delete(&changeRow{})
	}
	return res.RowsAffected, classify("prune change log", res.Error)
}

// Rebase starts a new history above every version the caller has seen:
// after the database went back in time (restored to an earlier point, or
// failed over to a standby that lost commits), versions it issues again
// would collide with versions replicas and clients hold from the lost
// history. Rebase moves the version past floor and logs a Reset there, so
// any replay that crosses it becomes a snapshot, and returns the first page
// at the new version, read under the version row's lock (nothing can
// commit in between).
func (s *Store) Rebase(ctx context.Context, floor int64, limit int) (topic.Page, topic.Change, error) {
	c := changeRow{Kind: storedKind(topic.Reset), CommittedAt: time.Now().UTC(), Stamp: newStamp()}
	var page topic.Page
	ctx, cancel := bounded(ctx)
	defer cancel()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		greatest := "GREATEST"
		if s.dialect == "sqlite" {
			greatest = "MAX"
		}
		if err := tx.Raw("UPDATE bbs_version SET v = "+greatest+"(v, ?) + 1, stamp = ? WHERE id = 1 RETURNING v", floor, c.Stamp).Find(&c.Version).Error; err != nil {
			return err
		}
		if c.Version == 0 {
			return errNoVersionRow
		}
		if err := logChange(tx, &c); err != nil {
			return err
		}
		var err error
		page, err = readPage(tx, 0, limit)
		return err
	})
	if err != nil {
		return topic.Page{}, topic.Change{}, classify("rebase history", err)
	}
	return page, c.domain(), nil
}

// readTx runs fn in a read-only transaction that sees one snapshot. SQLite's
// transactions are serialisable already and take no options.
func (s *Store) readTx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	var opts []*sql.TxOptions
	if s.dialect == "postgres" {
		opts = append(opts, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	}
	ctx, cancel := bounded(ctx)
	defer cancel()
	return s.db.WithContext(ctx).Transaction(fn, opts...)
}
