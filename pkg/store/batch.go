package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// Group commit. Every change in the cluster takes the version row's lock
// from its bump to its COMMIT (recordChange says why), so one change per
// transaction caps the whole cluster at one commit at a time, however many
// replicas there are. Instead, each replica's creates go through one
// committer goroutine: it takes whatever creates arrived while its last
// transaction was in flight (up to maxBatch) and commits them together:
// one INSERT of all the rows, one bump of the version by the batch's size
// with one change-log statement, one COMMIT. At low load a batch is the
// single write that arrived, with the same statements as before, so its
// latency does not grow; under load the batch grows by itself, as much as
// the time one commit takes lets writers queue up.
//
// Edits and deletes stay one per transaction: each locks its topic's row
// and checks the caller's token inside the transaction, so any of them can
// fail on its own (a wrong token, a topic already gone), and they are rare
// next to creates.
//
// A batch never mixes a failing write with good ones. Everything a create
// can be refused for (the comment, the rate limit) is checked before it
// gets here; what is left to fail is the database, which fails the whole
// transaction, and then every writer in it gets the same true answer
// (nothing written, or outcome unknown when the COMMIT got no answer).
// When the database refuses a batch before its COMMIT (it answered with an
// error: an idempotency key already stored is the one expected), the
// cause may be one write's alone, so the batch retries each of its writes
// on its own. When it does not answer, every writer is told so at once:
// retrying one by one would only multiply the wait.

// maxBatch bounds one batch: its statements carry a few parameters per
// write, and one transaction should not hold the version lock for long.
const maxBatch = 256

// createReq is one create waiting for the committer.
type createReq struct {
	ctx  context.Context // the caller's: a create whose caller left before its batch began is dropped
	row  topicRow
	done chan createResult // buffered: the committer never waits for the caller
}

type createResult struct {
	row    topicRow
	change topic.Change
	err    error
}

// refusedBeforeCommit reports a write the database answered with an error
// (on Postgres) before COMMIT: certainly not written, and maybe caused by
// one of the batch's rows. Unavailability and unknown outcomes are not.
func refusedBeforeCommit(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && !errors.Is(err, topic.ErrOutcomeUnknown) &&
		pgErr.Code[:2] != "08" && pgErr.Code[:2] != "57" && pgErr.Code[:2] != "53"
}

// committer runs the batches until ctx ends (Close).
func (s *Store) committer(ctx context.Context) {
	defer close(s.committerDone)
	batch := make([]*createReq, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-s.creates:
			batch = append(batch[:0], r)
		}
	gather:
		for len(batch) < maxBatch {
			select {
			case r := <-s.creates:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		// The batch is not cut short by Close: Close waits for it.
		s.commitBatch(context.WithoutCancel(ctx), batch)
		clear(batch) // let the answered requests go
	}
}

// create hands row to the committer and waits for its answer.
func (s *Store) create(ctx context.Context, row topicRow) (topicRow, topic.Change, error) {
	r := &createReq{ctx: ctx, row: row, done: make(chan createResult, 1)}
	select {
	case s.creates <- r:
	case <-s.closing:
		return topicRow{}, topic.Change{}, fmt.Errorf("create topic: %w: the store is closed", topic.ErrUnavailable)
	case <-ctx.Done():
		return topicRow{}, topic.Change{}, classify("create topic", ctx.Err())
	}
	// Once queued, the answer always comes: the committer answers every
	// request it took, and takes every one it is handed before it stops.
	res := <-r.done
	return res.row, res.change, res.err
}

// commitBatch writes the batch in one transaction and answers each writer.
// Its statements are bounded by the query timeout, not by any one caller:
// once a create is in a batch, the batch decides its outcome.
func (s *Store) commitBatch(ctx context.Context, batch []*createReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- createResult{err: classify("create topic", err)}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	if s.observeBatch != nil {
		s.observeBatch(len(live))
	}
	rows := make([]topicRow, len(live))
	for i, r := range live {
		rows[i] = r.row
	}
	changes, err := s.write(ctx, "create topic", func(tx *gorm.DB) error {
		if err := tx.Create(&rows).Error; err != nil {
			if isUniqueViolation(err) {
				return errKeyTaken
			}
			return err
		}
		return nil
	})
	if len(live) > 1 && (errors.Is(err, errKeyTaken) || refusedBeforeCommit(err)) {
		// The database refused the batch before COMMIT: nothing of it was
		// written, and the cause may be one write's alone (a stored
		// idempotency key, two in the batch sharing one, a constraint or
		// trigger that one row trips), so each goes again on its own and
		// gets its own answer.
		for _, r := range live {
			s.commitBatch(ctx, []*createReq{r})
		}
		return
	}
	byID := make(map[int64]topic.Change, len(changes))
	for _, c := range changes {
		byID[c.ID] = c
	}
	for i, r := range live {
		if err != nil {
			r.done <- createResult{err: err}
			continue
		}
		r.done <- createResult{row: rows[i], change: byID[rows[i].ID]}
	}
}
