package deploytest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/wire"
	"github.com/jackc/pgx/v5"
)

// settledVersion waits until every replica answers GET /api/topics at one
// version, and returns that answer.
func settledVersion(t *testing.T, st *stack) wire.List {
	t.Helper()
	var lists []wire.List
	testenv.Eventually(t, 15*time.Second, func() error {
		lists = lists[:0]
		for _, r := range st.Replicas {
			var l wire.List
			if code, err := send(context.Background(), http.DefaultClient, http.MethodGet, "http://"+r.Addr+"/api/topics", "", nil, &l); err != nil || code != http.StatusOK {
				return fmt.Errorf("the replicas to agree: %s answers %d, %v", r.ID, code, err)
			}
			lists = append(lists, l)
		}
		for i, l := range lists[1:] {
			if l.Version != lists[0].Version {
				return fmt.Errorf("the replicas to agree: %s at version %d, %s at %d", st.Replicas[i+1].ID, l.Version, st.Replicas[0].ID, lists[0].Version)
			}
		}
		return nil
	})
	for i, l := range lists[1:] {
		if !sameJSON(l, lists[0]) {
			t.Errorf("%s and %s disagree at version %d", st.Replicas[i+1].ID, st.Replicas[0].ID, l.Version)
		}
	}
	return lists[0]
}

// checkBrowsers: each browser's view is GET /api/topics at the same version.
func checkBrowsers(t *testing.T, browsers []*browser, final wire.List) {
	t.Helper()
	var total browserStats
	total.Refused = map[int]int{}
	for i, b := range browsers {
		b.mu.Lock()
		for _, p := range b.problems {
			t.Errorf("browser %d: %s", i, p)
		}
		s := b.stats
		total.Connects += s.Connects
		total.Snapshots += s.Snapshots
		total.Resumed += s.Resumed
		total.Errors += s.Errors
		for k, v := range s.Refused {
			total.Refused[k] += v
		}
		b.mu.Unlock()
		if v := b.view(); !sameJSON(v, final) {
			t.Errorf("browser %d shows version %d with %d topics; GET /api/topics at %d has %d", i, v.Version, len(v.Topics), final.Version, len(final.Topics))
		}
	}
	t.Logf("%d browsers: %d streams opened (%d reconnects), %d snapshots, %d resumed from Last-Event-ID without one, refused %v, failed %d",
		len(browsers), total.Connects, total.Connects-len(browsers), total.Snapshots, total.Resumed, total.Refused, total.Errors)
	if total.Connects-len(browsers) < len(browsers) {
		t.Errorf("only %d reconnects: the restarts did not move the streams", total.Connects-len(browsers))
	}
	if len(total.Refused) > 0 || total.Errors > 0 {
		t.Errorf("stream connects through nginx: refused %v, failed %d: want every one answered 200", total.Refused, total.Errors)
	}
}

// checkWrites: every acknowledged write is in the database.
func checkWrites(t *testing.T, st *stack, l *ledger) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, st.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT id, comment FROM topics WHERE deleted_at IS NULL")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[int64]string{}
	for rows.Next() {
		var id int64
		var c string
		if err := rows.Scan(&id, &c); err != nil {
			t.Fatal(err)
		}
		stored[id] = c
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("writes through nginx: %v; %d topics acknowledged, %d in the database", l.statuses, len(l.topics), len(stored))
	if len(l.topics) < writeRate*5 {
		t.Errorf("only %d writes acknowledged", len(l.topics))
	}
	unacked := 0
	for key, n := range l.statuses {
		if strings.HasPrefix(key, "POST ") && key != "POST 201" {
			unacked += n
		}
	}
	// A write that got no 2xx may or may not have committed (the client
	// would retry it); nothing else may be in the database.
	if extra := len(stored) - len(l.topics); extra < 0 || extra > unacked {
		t.Errorf("%d topics in the database for %d acknowledged and %d unacknowledged writes", len(stored), len(l.topics), unacked)
	} else {
		t.Logf("of %d unacknowledged writes, %d committed anyway", unacked, extra)
	}
	for id, w := range l.topics {
		got, ok := stored[id]
		switch {
		case !ok:
			t.Errorf("acknowledged topic %d (%q) is not in the database", id, w.comment)
		case w.editAck && got != w.edit:
			t.Errorf("topic %d: %q, but the edit to %q was acknowledged", id, got, w.edit)
		case got != w.comment && got != w.edit:
			t.Errorf("topic %d: %q, never written", id, got)
		}
	}
}

// checkNoFailures: every write and read through nginx was answered as
// expected (201, 200) through the whole rolling restart: no 502 from a
// connection a draining replica closed under a request, no 503.
func checkNoFailures(t *testing.T, l *ledger) {
	t.Helper()
	n, by := l.failed()
	l.mu.Lock()
	total := 0
	for _, c := range l.statuses {
		total += c
	}
	l.mu.Unlock()
	t.Logf("failed requests through nginx: %d of %d %v", n, total, by)
	if n > 0 {
		t.Errorf("%d requests through nginx failed during the rolling restart %v: a drain must fail none", n, by)
	}
}

func sameJSON(a, b wire.List) bool {
	x, _ := json.Marshal(wire.List{Version: a.Version, Topics: a.Topics})
	y, _ := json.Marshal(wire.List{Version: b.Version, Topics: b.Topics})
	return string(x) == string(y)
}
