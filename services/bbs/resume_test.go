package main

import (
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/wire"
)

// TestResumeOnAnotherReplica: a client that was on r1 at version V and
// comes back through r2 with Last-Event-ID: V gets exactly V+1.. in order,
// as deltas, with no snapshot.
func TestResumeOnAnotherReplica(t *testing.T) {
	c := newCluster(t, "")
	r1, r2 := c.start("r1", nil), c.start("r2", nil)
	r1.create(t, "one")
	r1.create(t, "two")
	v := watch(t, "client", r1.URL, "")
	v.waitVersion(2, 5*time.Second)
	v.close()
	last := v.state()

	r2.create(t, "three")
	r1.create(t, "four")
	r2.create(t, "five")

	// Start from what the client had: it must only ever apply deltas.
	resumed := resumeAt(t, "resumed", r2.URL, wire.List{Version: last.Version, Topics: last.Topics, Limit: 100})
	resumed.waitVersion(5, 5*time.Second)
	resumed.check()
	resumed.mu.Lock()
	seen := append([]int64(nil), resumed.versions...)
	resumed.mu.Unlock()
	if len(seen) != 3 || seen[0] != 3 || seen[2] != 5 {
		t.Fatalf("resumed stream delivered versions %v, want exactly [3 4 5] as deltas", seen)
	}
	sameList(t, "resumed view", resumed.state(), r2.list(t))
}

// TestResumeFromChangeLog: a replica that started after the changes (its
// memory holds none of them) still resumes exactly, from the change log.
func TestResumeFromChangeLog(t *testing.T) {
	c := newCluster(t, "")
	r1 := c.start("r1", nil)
	for _, s := range []string{"a", "b", "c", "d"} {
		r1.create(t, s)
	}
	late := c.start("late", nil)
	v := resumeAt(t, "client", late.URL, wire.List{Version: 1})
	v.waitVersion(4, 5*time.Second)
	seen := v.seen()
	if len(seen) != 3 || seen[0] != 2 {
		t.Fatalf("late replica delivered %v, want deltas [2 3 4]", seen)
	}
	v.check()
}

// TestResumeUnknownGetsSnapshot: when the missed changes cannot be known
// (a version from before this database, say), the client gets a snapshot,
// never a silent gap.
func TestResumeUnknownGetsSnapshot(t *testing.T) {
	c := newCluster(t, "")
	r1 := c.start("r1", nil)
	r1.create(t, "a")
	r1.create(t, "b")
	// Ahead of anything the cluster has: the replica waits briefly to catch
	// up, then answers with what it knows for sure.
	v := watch(t, "client", r1.URL, "99")
	v.waitVersion(2, 5*time.Second)
	seen := v.seen()
	if len(seen) != 1 || seen[0] != 2 {
		t.Fatalf("got versions %v, want one snapshot at 2", seen)
	}
	sameList(t, "snapshot", v.state(), r1.list(t))
}
