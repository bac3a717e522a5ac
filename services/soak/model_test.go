package soak

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/bbsboard/bbs/pkg/wire"
	"github.com/jackc/pgx/v5/pgxpool"
)

// model is the board as the database says it was at every version, built
// from the change log read straight from Postgres (never through a
// replica's proxy) and independently of the server's window logic: the
// window at V is the newest windowLimit topics live at V, whatever deletes
// came before.
type model struct {
	dbURL string

	mu      sync.Mutex
	db      *pgxpool.Pool        // reconnects by itself: the log must be read whatever happened
	last    int64                // highest version read
	hist    map[int64]*topicHist // by topic id
	ids     []int64              // every id seen, ascending
	unknown []span               // versions whose window cannot be known (log holes)
	markers map[int]logRef       // write number (the [wN] in a comment) -> where the log has it
	created map[int]int          // write number -> topic.created entries carrying it
	entries int64
}

// topicHist is everything the log said about one topic.
type topicHist struct {
	created int64   // version of its topic.created entry (0: not seen)
	deleted []int64 // versions of its topic.deleted entries
	revs    []rev   // created and updated entries, in version order
}

type rev struct {
	version int64
	kind    string
	t       *wire.Topic // nil: the entry carried no text (redacted)
}

type span struct{ from, to int64 }

type logRef struct {
	version int64
	kind    string
	id      int64
}

var markerRE = regexp.MustCompile(`\[w(\d+)\]`)

func newModel(ctx context.Context, dbURL string) (*model, error) {
	m := &model{dbURL: dbURL, hist: map[int64]*topicHist{}, markers: map[int]logRef{}, created: map[int]int{}}
	var err error
	m.db, err = pgxpool.New(ctx, dbURL)
	return m, err
}

func (m *model) close() {
	m.db.Close()
}

// sync reads every log entry after the last one read.
func (m *model) sync(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.syncLocked(ctx)
}

func (m *model) syncLocked(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		rows, err := m.db.Query(ctx, `SELECT version, kind, topic_id, comment, created_at, updated_at
FROM topic_changes WHERE version > $1 ORDER BY version LIMIT 2000`, m.last)
		if err != nil {
			return fmt.Errorf("read change log: %w", err)
		}
		n, holeFrom := 0, int64(0)
		for rows.Next() {
			var (
				v, id            int64
				kind             string
				comment          *string
				created, updated *time.Time
			)
			if err := rows.Scan(&v, &kind, &id, &comment, &created, &updated); err != nil {
				rows.Close()
				return fmt.Errorf("read change log: %w", err)
			}
			n++
			if v != m.last+1 && holeFrom == 0 {
				// Entries we never read are gone (a purge that takes the
				// topic's history with it): the window is unknown from the
				// hole up to what this read sees, which includes the
				// purge that made it.
				holeFrom = m.last + 1
			}
			if kind != "topic.deleted" && comment == nil && holeFrom == 0 {
				holeFrom = v
			}
			m.apply(v, kind, id, comment, created, updated)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read change log: %w", err)
		}
		if holeFrom != 0 {
			m.unknown = append(m.unknown, span{holeFrom, m.last})
		}
		if n < 2000 {
			return nil
		}
	}
}

func (m *model) apply(v int64, kind string, id int64, comment *string, created, updated *time.Time) {
	m.last = v
	m.entries++
	h := m.hist[id]
	if h == nil {
		h = &topicHist{}
		m.hist[id] = h
		i, _ := slices.BinarySearch(m.ids, id)
		m.ids = slices.Insert(m.ids, i, id)
	}
	switch kind {
	case "topic.deleted":
		h.deleted = append(h.deleted, v)
		return
	case "topic.created":
		if h.created == 0 {
			h.created = v
		}
	}
	r := rev{version: v, kind: kind}
	if comment != nil && created != nil && updated != nil {
		r.t = &wire.Topic{ID: id, Comment: *comment, CreatedAt: *created, UpdatedAt: *updated}
		if mm := markerRE.FindStringSubmatch(*comment); mm != nil {
			n, _ := strconv.Atoi(mm[1])
			if _, seen := m.markers[n]; !seen {
				m.markers[n] = logRef{version: v, kind: kind, id: id}
			}
			if kind == "topic.created" {
				m.created[n]++
			}
		}
	}
	h.revs = append(h.revs, r)
}

// known reports whether the window at v can be computed: v has been read
// and lies in no hole.
func (m *model) knownLocked(v int64) bool {
	if v > m.last || v < 0 {
		return false
	}
	for _, s := range m.unknown {
		if v >= s.from && v <= s.to {
			return false
		}
	}
	return true
}

// page is the board at version v as GET /api/topics?before=&limit= must
// show it: the newest limit live topics with ids below before (0: all).
// ok is false when v is not (yet) known.
func (m *model) page(v int64, limit int, before int64) ([]wire.Topic, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.knownLocked(v) {
		return nil, false
	}
	out := []wire.Topic{}
	for i := len(m.ids) - 1; i >= 0 && len(out) < limit; i-- {
		id := m.ids[i]
		if before > 0 && id >= before {
			continue
		}
		if t := m.hist[id].at(v); t != nil {
			out = append(out, *t)
		}
	}
	return out, true
}

// at is the topic as it was at version v, nil if it was not live then.
func (h *topicHist) at(v int64) *wire.Topic {
	if h.created == 0 || h.created > v {
		return nil
	}
	for _, d := range h.deleted {
		if d <= v {
			return nil
		}
	}
	var t *wire.Topic
	for _, r := range h.revs {
		if r.version > v {
			break
		}
		t = r.t
	}
	return t
}

// lastRead is the highest version read so far.
func (m *model) lastRead() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

// dbVersion is the database's current version.
func (m *model) dbVersion(ctx context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var v int64
	err := m.db.QueryRow(ctx, "SELECT v FROM bbs_version WHERE id = 1").Scan(&v)
	return v, err
}

// prune reads the log to its end, then deletes entries up to a version
// drawn by pick from what was read, as an operator or a replica's own
// pruning would: the model never loses an entry it has not read.
func (m *model) prune(ctx context.Context, pick func(last int64) int64) (upTo, deleted int64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.syncLocked(ctx); err != nil {
		return 0, 0, err
	}
	upTo = pick(m.last)
	// As the replicas' own pruning does: entries a write holds are left.
	tag, err := m.db.Exec(ctx, `DELETE FROM topic_changes WHERE version IN (
SELECT version FROM topic_changes WHERE version <= $1 FOR UPDATE SKIP LOCKED)`, upTo)
	if err != nil {
		return upTo, 0, err
	}
	return upTo, tag.RowsAffected(), nil
}

// marker returns where the log has the comment of write n, if anywhere.
func (m *model) marker(n int) (logRef, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.markers[n]
	return r, ok
}

// markerCount is how many topic.created entries carry write n's comment.
func (m *model) markerCount(n int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.created[n]
}

// topicLog is what the log said about topic id: whether it was created,
// the comments it carried and the versions that deleted it.
func (m *model) topicLog(id int64) (created bool, comments []string, deletes []int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.hist[id]
	if h == nil {
		return false, nil, nil
	}
	for _, r := range h.revs {
		if r.t != nil {
			comments = append(comments, r.t.Comment)
		}
	}
	return h.created != 0, comments, slices.Clone(h.deleted)
}

// liveIDs lists topics live at the last version read, newest first.
func (m *model) liveIDs() []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int64
	for i := len(m.ids) - 1; i >= 0; i-- {
		if m.hist[m.ids[i]].at(m.last) != nil {
			out = append(out, m.ids[i])
		}
	}
	return out
}

// stats is what the report prints about the model.
func (m *model) stats() (entries, topics int64, holes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.entries, int64(len(m.ids)), len(m.unknown)
}
