package store

import (
	"context"
	"errors"
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
	// created holds the creates' log entries until flush gives them their
	// versions: a batch bumps the version once for all of them.
	created []changeRow
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

// recordChange records the change in the write's outbox. An edit or a
// delete gets its version and its log entry here and now; creates wait for
// flush, which versions all of a batch's creates in one statement. Why
// either keeps versions in commit order: versions.go.
func recordChange(tx *gorm.DB, kind topic.Kind, r *topicRow) error {
	ob, ok := tx.Statement.Context.Value(outboxKey{}).(*outbox)
	if !ok {
		return errNoOutbox
	}
	c := changeRow{Kind: storedKind(kind), TopicID: r.ID, CommittedAt: time.Now().UTC(), Stamp: newStamp()}
	if kind != topic.Deleted {
		created, updated := r.CreatedAt.UTC(), r.UpdatedAt.UTC()
		c.Comment, c.CreatedAt, c.UpdatedAt = &r.Comment, &created, &updated
	}
	if kind == topic.Created {
		ob.created = append(ob.created, c)
		return nil
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
