package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/store"
	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/wire"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"
)

// The tests here walk the histories that once left a view stale: deletes
// that shrink the first page, a change log pruned past a replica, a
// database restored to an earlier point, hostile notices on the bus.

// db opens the cluster's database directly, as an operator (or a restore)
// would touch it.
func (c *cluster) db(t *testing.T) *gorm.DB {
	t.Helper()
	st, err := store.Open(context.Background(), c.base["DATABASE_URL"], slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st.DB()
}

// redis opens the cluster's Redis; key names the prefixed key.
func (c *cluster) redis(t *testing.T) (*redis.Client, func(string) string) {
	t.Helper()
	opt, err := redis.ParseURL(c.base["REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb, func(k string) string { return c.base["REDIS_PREFIX"] + ":" + k }
}

// firstPage is the database's newest n live topics, read past the window.
func firstPage(t testing.TB, r *replica, n int) wire.List {
	t.Helper()
	l := databaseList(t, r)
	l.Topics = l.Topics[:min(n, len(l.Topics))]
	return l
}

func listJSON(l wire.List) string {
	l.Limit = 0
	b, _ := json.Marshal(l)
	return string(b)
}

// deleteTopic deletes with the admin token and expects 204.
func deleteTopic(t *testing.T, r *replica, id int64) {
	t.Helper()
	if a := testenv.Send(testenv.Request{Method: "DELETE", URL: topicURL(r, id), Token: "admin-secret"}); a.Status != http.StatusNoContent {
		t.Fatalf("delete %d on %s: %v", id, r.id, a)
	}
}

// TestWindowRefillsOnDelete: with SNAPSHOT_LIMIT=3, create 5 topics and
// delete the newest 3 across two replicas. The first page, on both
// replicas, on a replica that loaded from the database afterwards, and in
// every client that applied the events, is the database's newest 3 live
// topics at every step. Before, the deletes emptied the in-memory page
// while the database still had 2 topics to show.
func TestWindowRefillsOnDelete(t *testing.T) {
	c := newCluster(t, "")
	extra := map[string]string{"SNAPSHOT_LIMIT": "3"}
	r1, r2 := c.start("r1", extra), c.start("r2", extra)
	views := []*view{watch(t, "on r1", r1.URL, ""), watch(t, "on r2", r2.URL, "")}
	var ids []int64
	for i := range 5 {
		ids = append(ids, r1.create(t, fmt.Sprintf("topic %d", i)).Topic.ID)
	}
	for i, id := range []int64{ids[4], ids[3], ids[2]} {
		deleteTopic(t, []*replica{r1, r2}[i%2], id)
		want := int64(5 + i + 1)
		for _, v := range views {
			v.waitVersion(want, 5*time.Second)
		}
		db := firstPage(t, r1, 3)
		for _, r := range []*replica{r1, r2} {
			testenv.Eventually(t, 5*time.Second, func() error {
				if got := r.list(t); listJSON(got) != listJSON(db) {
					return fmt.Errorf("%s serves %s, database has %s", r.id, listJSON(got), listJSON(db))
				}
				return nil
			})
		}
		for _, v := range views {
			sameList(t, v.name+" after delete", v.state(), db)
		}
	}
	if got := firstPage(t, r1, 3); len(got.Topics) != 2 {
		t.Fatalf("database page %s, want the 2 oldest", listJSON(got))
	}
	fresh := c.start("fresh", extra)
	sameList(t, "a replica loaded afterwards", fresh.list(t), r1.list(t))
	late := watch(t, "late", fresh.URL, "")
	late.waitVersion(8, 5*time.Second)
	sameList(t, "a new stream's snapshot", late.state(), r2.list(t))
	for _, v := range append(views, late) {
		v.check()
	}
}

// TestStaleCacheAndPrunedLog: the shared cache holds the board at v1, the
// change log has been pruned past it, and the database is at v3. A replica
// that starts from that cache must not serve v1 as current: it reads the
// database. Before, it took the empty log read for "up to date" and served
// v1 for good, ready and "ok", and a client resuming with Last-Event-ID: 3
// lost two topics.
func TestStaleCacheAndPrunedLog(t *testing.T) {
	c := newCluster(t, "")
	r1 := c.start("r1", map[string]string{"VERSION_CHECK": "1h"})
	r1.create(t, "one")
	rdb, key := c.redis(t)
	stale := cachedAt(t, rdb, key, 1)
	r1.create(t, "two")
	r1.create(t, "three")
	waitCache(t, rdb, key, 3)
	// Put v1 back, as a cache written while Redis was cut off would be,
	// and prune every entry of the log.
	putBack(t, rdb, key, stale)
	if err := c.db(t).Exec("DELETE FROM topic_changes").Error; err != nil {
		t.Fatal(err)
	}
	r2 := c.start("r2", map[string]string{"VERSION_CHECK": "1h"})
	want := firstPage(t, r1, 100)
	if want.Version != 3 {
		t.Fatalf("database at %d, want 3", want.Version)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if got := r2.list(t); listJSON(got) != listJSON(want) {
			return fmt.Errorf("new replica serves %s, database has %s", listJSON(got), listJSON(want))
		}
		return nil
	})
	v := resumeAt(t, "resumed", r2.URL, wire.List{Version: 3, Topics: want.Topics, Limit: 100})
	time.Sleep(200 * time.Millisecond)
	sameList(t, "client resumed at 3", v.state(), want)
	v.check()
}

// cachedAt waits until the shared cache holds version v and returns a copy
// of it, to be put back later as a stale snapshot.
func cachedAt(t *testing.T, rdb *redis.Client, key func(string) string, v int64) map[string]string {
	t.Helper()
	waitCache(t, rdb, key, v)
	snap, err := rdb.HGetAll(context.Background(), key("snapshot")).Result()
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// putBack replaces the shared cache with snap, as a cache written while
// Redis was cut off from the others would be.
func putBack(t *testing.T, rdb *redis.Client, key func(string) string, snap map[string]string) {
	t.Helper()
	ctx := context.Background()
	if err := rdb.Del(ctx, key("snapshot")).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, key("snapshot"), snap).Err(); err != nil {
		t.Fatal(err)
	}
}

// waitCache waits until the shared cache holds version v, and says how
// long that took.
func waitCache(t *testing.T, rdb *redis.Client, key func(string) string, v int64) time.Duration {
	t.Helper()
	return testenv.Eventually(t, 5*time.Second, func() error {
		if got, _ := rdb.HGet(context.Background(), key("snapshot"), "v").Int64(); got != v {
			return fmt.Errorf("cache at %d, want %d", got, v)
		}
		return nil
	})
}

// rollBack turns the database back to version to, as a restore to a point
// in time would: later topics and log entries gone, the version row as it
// was then. then, if set, runs in the same transaction, so nobody sees the
// database between the restore and what then writes.
func rollBack(t *testing.T, db *gorm.DB, to int64, then func(tx *gorm.DB) error) {
	t.Helper()
	err := db.Transaction(func(tx *gorm.DB) error {
		var stamp int64
		if err := tx.Raw("SELECT stamp FROM topic_changes WHERE version = ?", to).Scan(&stamp).Error; err != nil {
			return err
		}
		for _, q := range []string{
			"DELETE FROM topics WHERE id NOT IN (SELECT topic_id FROM topic_changes WHERE version <= ?)",
			"DELETE FROM topic_changes WHERE version > ?",
		} {
			if err := tx.Exec(q, to).Error; err != nil {
				return err
			}
		}
		if err := tx.Exec("UPDATE bbs_version SET v = ?, stamp = ?", to, stamp).Error; err != nil {
			return err
		}
		if then != nil {
			return then(tx)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDatabaseGoesBackInTime: three topics, then the database restored to
// v1 and written again. The database wins: within VERSION_CHECK every
// replica, the shared cache and every stream show what it holds, and a
// client resuming with an id from before the restore gets a snapshot, not
// a claim that it is current. Before, "two" and "three" stayed on every
// page forever and the new write ("four") never showed anywhere.
func TestDatabaseGoesBackInTime(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes int  // written again after the restore
		direct bool // written past the replicas (no notice), up to beyond the old head
	}{
		{"one write through a replica", 1, false},
		{"silent writes past the old version", 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, "")
			extra := map[string]string{"VERSION_CHECK": "300ms"}
			r1, r2 := c.start("r1", extra), c.start("r2", extra)
			for _, s := range []string{"one", "two", "three"} {
				r1.create(t, s)
			}
			views := []*view{watch(t, "on r1", r1.URL, ""), watch(t, "on r2", r2.URL, "")}
			for _, v := range views {
				v.waitVersion(3, 5*time.Second)
			}
			db := c.db(t)
			if !tc.direct {
				rollBack(t, db, 1, nil)
				for i := range tc.writes {
					r1.create(t, fmt.Sprintf("again %d", i))
				}
			} else {
				// Written on the restored primary before any replica looked:
				// the database is past the versions the replicas hold, with
				// another history.
				rollBack(t, db, 1, func(tx *gorm.DB) error { return writeAgain(tx, 1, tc.writes) })
			}
			want := func() wire.List { return firstPage(t, r1, 100) }
			took := testenv.Eventually(t, 5*time.Second, func() error {
				w := listJSON(want())
				for _, r := range []*replica{r1, r2} {
					got := r.list(t)
					got.Version = 0
					var wl wire.List
					_ = json.Unmarshal([]byte(w), &wl)
					wl.Version = 0
					if listJSON(got) != listJSON(wl) {
						return fmt.Errorf("%s serves %s, database has %s", r.id, listJSON(got), w)
					}
				}
				for _, v := range views {
					got := v.state()
					if got.Version <= 3 {
						return fmt.Errorf("%s still at %d", v.name, got.Version)
					}
				}
				return nil
			})
			t.Logf("every replica and stream adopted the restored database in %v", took.Round(time.Millisecond))
			final := r1.list(t)
			if final.Version <= 3 {
				t.Fatalf("version %d after the restore: old ids could be mistaken for it", final.Version)
			}
			sameList(t, "r2", r2.list(t), final)
			for _, v := range views {
				sameList(t, v.name, v.state(), final)
				v.check()
			}
			rdb, key := c.redis(t)
			testenv.Eventually(t, 5*time.Second, func() error {
				got, _ := rdb.HGet(context.Background(), key("snapshot"), "d").Result()
				var l wire.List
				_ = json.Unmarshal([]byte(got), &l)
				if listJSON(l) != listJSON(final) {
					return fmt.Errorf("cache holds %s, want %s", got, listJSON(final))
				}
				return nil
			})
			// A client that saw v3 before the restore must get a snapshot.
			old := resumeAt(t, "resumed from before", r2.URL, wire.List{Version: 3})
			old.waitVersion(final.Version, 5*time.Second)
			sameList(t, "resumed from before the restore", old.state(), final)
		})
	}
}

// writeAgain writes n topics after version from as the store would:
// rows, log entries with fresh stamps, and the version row.
func writeAgain(tx *gorm.DB, from int64, n int) error {
	v := from
	for i := range n {
		v++
		now := time.Now().UTC()
		var id int64
		if err := tx.Raw("INSERT INTO topics (comment, token_hash, created_at, updated_at) VALUES (?, ?, ?, ?) RETURNING id",
			fmt.Sprintf("again %d", i), []byte("x"), now, now).Scan(&id).Error; err != nil {
			return err
		}
		err := tx.Exec(`INSERT INTO topic_changes (version, kind, topic_id, comment, created_at, updated_at, stamp)
SELECT ?, 'topic.created', id, comment, created_at, updated_at, ? FROM topics WHERE id = ?`, v, 1000+v, id).Error
		if err != nil {
			return err
		}
	}
	return tx.Exec("UPDATE bbs_version SET v = ?, stamp = ?", v, 1000+v).Error
}

// TestHostileNotices: notices on the bus that no database write made (a
// version from the future, near or far, an unknown kind, garbage) are never applied and cost
// at most a read of the database each. Before, the far-future one stayed
// pending for good and re-armed a database poll every 200 ms, and the
// unknown kind advanced the version with no change behind it.
func TestHostileNotices(t *testing.T) {
	c := newCluster(t, "")
	r1 := c.start("r1", map[string]string{"VERSION_CHECK": "1h"})
	r1.create(t, "real")
	rdb, key := c.redis(t)
	ctx := context.Background()
	before := r1.metric(t, "bbs_db_queries_total")
	for _, msg := range []string{
		`{"v":1000000,"k":"topic.created","id":7,"t":{"id":7,"comment":"from the future"}}`,
		`{"v":4,"k":"topic.created","id":9,"t":{"id":9,"comment":"from the near future"}}`,
		`{"v":2,"k":"topic.bogus","id":1}`,
		`{"v":2,"k":"topic.created","id":8}`,
		`not json`,
	} {
		if err := rdb.Publish(ctx, key("changes"), msg).Err(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second)
	if got := r1.list(t); got.Version != 1 || len(got.Topics) != 1 {
		t.Fatalf("after hostile notices the replica serves %s", listJSON(got))
	}
	// Each may cost one catch-up read (a few statements); a poll every
	// 200 ms would be 10 reads or more.
	if n := r1.metric(t, "bbs_db_queries_total") - before; n > 16 {
		t.Fatalf("%v statements in 2 s after 5 hostile notices: the replica keeps polling", n)
	}
	created := r1.create(t, "after")
	v := watch(t, "client", r1.URL, "")
	v.waitVersion(2, 5*time.Second)
	if got := v.state(); len(got.Topics) != 2 || got.Topics[0].ID != created.Topic.ID {
		t.Fatalf("client shows %s", listJSON(got))
	}
	v.check()
}

// TestCacheCatchesUp: the shared cache behind the database after the
// writes stopped (the store after the last write failed, say) is brought
// up to date by the periodic check. Before, it stayed behind for good.
func TestCacheCatchesUp(t *testing.T) {
	c := newCluster(t, "")
	r := c.start("r1", map[string]string{"VERSION_CHECK": "200ms"})
	r.create(t, "one")
	rdb, key := c.redis(t)
	old := cachedAt(t, rdb, key, 1)
	r.create(t, "two")
	waitCache(t, rdb, key, 2)
	putBack(t, rdb, key, old)
	took := waitCache(t, rdb, key, 2)
	t.Logf("cache caught up in %v", took.Round(time.Millisecond))
}

// TestResumeOnLaggingReplica: a client that saw version V on one replica
// resumes on another that is behind V and cannot reach the database (nor
// Redis) to catch up. It must not be handed the lagging replica's older
// snapshot, which would take its board back in time: it is attached at V
// and gets what follows once the replica catches up. Before, its view went
// backwards (the soak test found it, seeds 11 and 688135576).
func TestResumeOnLaggingReplica(t *testing.T) {
	c := newCluster(t, "")
	r1 := c.start("r1", nil)
	dbProxy, dbURL := databaseProxy(t, c)
	ru, _ := url.Parse(c.base["REDIS_URL"])
	redisProxy := testenv.StartProxy(t, ru.Host)
	ru.Host = redisProxy.Addr()
	r2 := c.start("r2", map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": ru.String(), "VERSION_CHECK": "300ms"})
	r1.create(t, "one")
	v := watch(t, "client", r1.URL, "")
	v.waitVersion(1, 5*time.Second)
	testenv.Eventually(t, 5*time.Second, func() error {
		if got := r2.list(t).Version; got != 1 {
			return fmt.Errorf("r2 at %d", got)
		}
		return nil
	})
	dbProxy.Cut()
	redisProxy.Freeze()
	r1.create(t, "two")
	r1.create(t, "three")
	v.waitVersion(3, 5*time.Second)
	v.close()
	if got := r2.list(t).Version; got != 1 {
		t.Fatalf("r2 at %d, want it behind at 1", got)
	}
	v.connect(r2.URL, v.lastID)
	time.Sleep(2500 * time.Millisecond) // past the replica's wait for itself
	dbProxy.Restore()
	redisProxy.Restore()
	r1.create(t, "four")
	v.waitVersion(4, 10*time.Second)
	sameList(t, "resumed on the lagging replica", v.state(), r1.list(t))
	v.check()
}
