package store

import (
	"context"

	"github.com/bbsboard/bbs/pkg/topic"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Create stores a new topic. It returns the topic and the changes that
// COMMITTED with it; only now may they be published.
func (s *Store) Create(ctx context.Context, comment string, tokenHash []byte) (topic.Topic, []topic.Change, error) {
	row := topicRow{Comment: comment, TokenHash: tokenHash}
	changes, err := s.write(ctx, "create topic", func(tx *gorm.DB) error {
		return tx.Create(&row).Error
	})
	if err != nil {
		return topic.Topic{}, nil, err
	}
	return row.domain(), changes, nil
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
// (purge also reaches topics that are already soft-deleted).
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
		return tx.Delete(&row).Error
	})
}

// lockTopic reads the row FOR UPDATE so a concurrent edit or delete of the
// same topic waits instead of acting on what it read before ours committed.
func lockTopic(tx *gorm.DB, id int64, row *topicRow) error {
	return tx.Clauses(clause.Locking{Strength: "UPDATE"}).First(row, id).Error
}

// write runs fn in a transaction whose hooks queue their changes in an
// outbox, and returns the queued changes only once COMMIT succeeded. On
// rollback they are dropped with the transaction.
//
// If COMMIT fails ambiguously (the connection drops while committing) the
// write may have landed unannounced; every replica's periodic version check
// finds it in the change log.
func (s *Store) write(ctx context.Context, op string, fn func(tx *gorm.DB) error) ([]topic.Change, error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	ctx, ob := withOutbox(ctx)
	if err := s.db.WithContext(ctx).Transaction(fn); err != nil {
		return nil, classify(op, err)
	}
	return ob.changes, nil
}
