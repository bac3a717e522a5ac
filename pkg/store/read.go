package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/bbsboard/bbs/pkg/topic"
	"gorm.io/gorm"
)

const selectVersion = "SELECT v FROM bbs_version WHERE id = 1"

// Page returns up to limit live topics, newest first, with ids below before
// (0: from the newest), and the version they were read at. Both come from
// one database snapshot, so the page is exactly the board at that version.
func (s *Store) Page(ctx context.Context, before int64, limit int) (topic.Page, error) {
	var page topic.Page
	err := s.readTx(ctx, func(tx *gorm.DB) error {
		if err := tx.Raw(selectVersion).Scan(&page.Version).Error; err != nil {
			return err
		}
		q := tx.Order("id DESC").Limit(limit)
		if before > 0 {
			q = q.Where("id < ?", before)
		}
		var rows []topicRow
		if err := q.Find(&rows).Error; err != nil {
			return err
		}
		page.Topics = make([]topic.Topic, len(rows))
		for i := range rows {
			page.Topics[i] = rows[i].domain()
		}
		return nil
	})
	return page, classify("read topics", err)
}

// ChangesSince returns up to max logged changes after version, in order.
// Versions commit in order (see recordChange), so the result has no holes;
// it starts later than version+1 only when the log was pruned past it.
func (s *Store) ChangesSince(ctx context.Context, version int64, max int) ([]topic.Change, error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	var rows []changeRow
	err := s.db.WithContext(ctx).Where("version > ?", version).Order("version").Limit(max).Find(&rows).Error
	if err != nil {
		return nil, classify("read change log", err)
	}
	out := make([]topic.Change, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}

// Version returns the latest committed version.
func (s *Store) Version(ctx context.Context) (int64, error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	var v int64
	err := s.db.WithContext(ctx).Raw(selectVersion).Scan(&v).Error
	return v, classify("read version", err)
}

// Prune bounds the change log by count and by age: it drops entries more
// than keep versions old or committed before maxAge ago. A replica or
// client that needs a pruned entry gets a snapshot instead.
func (s *Store) Prune(ctx context.Context, keep int64, maxAge time.Duration) (int64, error) {
	v, err := s.Version(ctx)
	if err != nil {
		return 0, err
	}
	ctx, cancel := bounded(ctx)
	defer cancel()
	res := s.db.WithContext(ctx).Where("version <= ? OR committed_at < ?", v-keep, time.Now().UTC().Add(-maxAge)).Delete(&changeRow{})
	return res.RowsAffected, classify("prune change log", res.Error)
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
