package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/jackc/pgx/v5"
)

// TestPostRetriedWhenOutcomeUnknown: a post from the page whose COMMIT
// lands in the database while the replica never hears back (its
// connection to Postgres hangs during the COMMIT) gets 503 outcome_unknown.
// The page sends the same post again with the same Idempotency-Key once
// the database answers, and so ends with the one topic that landed, its
// token kept (the author can edit it), and no duplicate.
func TestPostRetriedWhenOutcomeUnknown(t *testing.T) {
	br := startBrowser(t)
	c := startCluster(t, clusterOptions{replicas: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := pgx.Connect(ctx, c.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	// COMMIT of a topic marked "slow create" sleeps a second in a deferred
	// trigger: the window in which the test hangs the connection.
	if _, err := db.Exec(ctx, `
CREATE FUNCTION test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.comment LIKE 'slow create%' THEN PERFORM pg_sleep(1); END IF;
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER test_slow_commit AFTER INSERT ON topics
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_slow_commit();`); err != nil {
		t.Fatal(err)
	}
	// A replica that reaches Postgres through a proxy the test can freeze.
	u, err := url.Parse(c.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartProxy(t, u.Host)
	u.Host = proxy.Addr()
	c.env = append(c.env, "DATABASE_URL="+u.String())
	r := testenv.StartReplica(t, c.spec("proxied"))
	p := br.open(t, "author", r.URL, tabOptions{})

	text := "slow create from the page " + randomName("")
	p.post(text)
	// Once the COMMIT sleeps in the trigger, hang the connection: the
	// COMMIT completes, its answer stays in the proxy.
	testenv.Eventually(t, actionTimeout, func() error {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND state = 'active' AND lower(query) = 'commit' AND wait_event = 'PgSleep'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return errors.New("the post's COMMIT never started")
		}
		return nil
	})
	proxy.Freeze()
	// The replica gives up on the COMMIT after 3 s and answers 503
	// outcome_unknown; the database answers again a little later.
	waitLog(t, r, `"write outcome unknown"`, actionTimeout)
	proxy.Restore()

	p.waitTrue("the form empties once the retried post is confirmed", `document.getElementById('comment').value === ''`)
	if msg := p.text("#post-error"); msg != "" {
		t.Errorf("error shown after the retried post succeeded: %q", msg)
	}
	var rows int
	var id int64
	if err := db.QueryRow(ctx, `SELECT count(*), max(id) FROM topics WHERE comment = $1`, text).Scan(&rows, &id); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Fatalf("%d topics with the post's text, want 1", rows)
	}
	li := fmt.Sprintf(`#topics li.topic[data-id="%d"]`, id)
	p.waitTrue("the page shows the topic with its edit button", fmt.Sprintf(`!!document.querySelector(%s)`, js(li+" button.edit")))
	// The token the page kept is the topic's: an edit with it is accepted.
	status := eval[int](p, fmt.Sprintf(`fetch('/api/topics/%d', {
		method: 'PATCH',
		headers: {'Content-Type': 'application/json', Authorization: 'Bearer ' + JSON.parse(localStorage.getItem('bbs.tokens'))[%s]},
		body: JSON.stringify({comment: 'edited by its author'}),
	}).then((r) => r.status)`, id, js(fmt.Sprint(id))))
	if status != http.StatusOK {
		t.Errorf("PATCH with the token the page kept: %d, want 200", status)
	}
	p.checkClean(func(pr problem) bool {
		return pr.source == "network" && strings.Contains(pr.text, "status of 503")
	})
}

// waitLog waits until the replica's log has a line containing s.
func waitLog(t *testing.T, r *testenv.Replica, s string, within time.Duration) {
	t.Helper()
	testenv.Eventually(t, within, func() error {
		if !strings.Contains(r.Logs(), s) {
			return fmt.Errorf("replica %s did not log %s:\n%s", r.ID, s, r.Tail(20))
		}
		return nil
	})
}
