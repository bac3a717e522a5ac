package feed_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/feed"
	"github.com/bbsboard/bbs/pkg/sse"
	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/topic"
)

// TestGapIsFetchedFromLog: a notice that arrives with a version the replica
// has not reached means notices were lost. The replica holds it, waits
// GapWait for the missing ones, then reads them from the change log and
// applies everything in order.
func TestGapIsFetchedFromLog(t *testing.T) {
	s := newSetup(t, "")
	r := s.start(t, feed.Config{GapWait: 50 * time.Millisecond})
	server, client := testenv.ConnPair(t)
	st, err := r.hub.NewStream(server, sse.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.feed.Attach(context.Background(), st, 0, true); err != nil {
		t.Fatal(err)
	}
	events := sse.NewReader(client)

	// First a write r must hear of, on the bus or by the catch-up its
	// subscription starts with: either way r's subscription is live
	// after it, so what follows cannot be found by that catch-up.
	other := s.start(t, feed.Config{})
	other.write(t, "warm-up")
	testenv.Eventually(t, 5*time.Second, atVersion("replica", r, 1))

	// v2 commits but is never announced (a replica died between COMMIT
	// and PUBLISH, say); v3 is announced.
	silent := openStore(t, s.dbURL)
	_, hash := topic.NewToken()
	if _, _, err := silent.Create(context.Background(), "never announced", hash); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, atVersion("other", other, 1))
	other.write(t, "announced")

	testenv.Eventually(t, 5*time.Second, atVersion("replica", r, 3))
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	for want := 1; want <= 3; want++ {
		ev, err := events.Next()
		if err != nil {
			t.Fatalf("waiting for version %d: %v", want, err)
		}
		if ev.ID != strconv.Itoa(want) || ev.Name != "topic.created" {
			t.Fatalf("event %s %q, want %d topic.created", ev.ID, ev.Name, want)
		}
	}
	if n := testutilCount(r, "gap"); n < 1 {
		t.Fatalf("resyncs{reason=gap} = %v, want >= 1", n)
	}
}

// TestResubscribeResyncs: when the Redis connection drops, go-redis
// resubscribes by itself and whatever was published meanwhile is lost.
// The resubscribe itself must trigger a catch-up, long before any
// periodic check (set to an hour here).
func TestResubscribeResyncs(t *testing.T) {
	rs := testenv.StartRedis(t)
	s := newSetup(t, rs.URL())
	r := s.start(t, feed.Config{})
	writer := s.start(t, feed.Config{})
	writer.write(t, "before")
	testenv.Eventually(t, 5*time.Second, atVersion("replica", r, 1))

	rs.Stop()
	// Written while Redis is down: the writer applies it at once; its
	// notice is lost. (The writer's queue would retry the publish once
	// Redis is back; the silent store stands for a notice that is really
	// gone, so only the resubscribe can bring it.)
	c := writer.write(t, "during the outage")
	if v := writer.feed.Version(); v != c.Version {
		t.Fatalf("writer at %d, want its own change %d at once", v, c.Version)
	}
	silent := openStore(t, s.dbURL)
	_, hash := topic.NewToken()
	_, lost, err := silent.Create(context.Background(), "notice lost for good", hash)
	if err != nil {
		t.Fatal(err)
	}
	c = lost[0]
	time.Sleep(300 * time.Millisecond)
	if v := r.feed.Version(); v != 1 {
		t.Fatalf("replica at %d while Redis is down, want 1", v)
	}
	rs.Start()
	testenv.Eventually(t, 15*time.Second, atVersion("replica caught up after Redis came back", r, c.Version))
	if n := testutilCount(r, "resubscribed"); n < 1 {
		t.Fatalf("resyncs{reason=resubscribed} = %v, want >= 1", n)
	}
}
