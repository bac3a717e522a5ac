package feed_test

import (
	"context"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/feed"
	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"
)

// TestNoticeWaitsForCommit holds a write's transaction open after its
// after-create hook has run (the change is logged and queued) and before
// COMMIT, and shows that nothing escapes: no notice on Redis, no replica
// (the writer included) at the new version, no other connection seeing the
// row. Once COMMIT happens, every replica has it.
func TestNoticeWaitsForCommit(t *testing.T) {
	s := newSetup(t, "")
	writer := s.start(t, feed.Config{})
	other := s.start(t, feed.Config{})

	// A raw subscriber on the channel, to see exactly when a notice is sent.
	opt, _ := redis.ParseURL(s.redisURL)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ps := rdb.Subscribe(context.Background(), s.prefix+":changes")
	defer ps.Close()
	if _, err := ps.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	notices := ps.Channel()

	// This callback runs after GORM's after-create hooks, still inside the
	// transaction (GORM commits only when the Transaction func returns).
	hooked, release := make(chan struct{}), make(chan struct{})
	err := writer.store.DB().Callback().Create().After("gorm:after_create").Register("test:hold", func(tx *gorm.DB) {
		if tx.Statement.Table == "topics" {
			close(hooked)
			<-release
		}
	})
	if err != nil {
		t.Fatal(err)
	}

	done := make(chan topic.Change, 1)
	go func() { done <- writer.write(t, "held before commit") }()
	select {
	case <-hooked:
	case <-time.After(5 * time.Second):
		t.Fatal("write never reached its hooks")
	}

	// Inside the open transaction the change is logged and queued; outside,
	// nothing may show it.
	deadline := time.After(300 * time.Millisecond)
	for waiting := true; waiting; {
		select {
		case n := <-notices:
			t.Fatalf("notice published before COMMIT: %s", n.Payload)
		case <-deadline:
			waiting = false
		}
	}
	for name, r := range map[string]*replica{"writer": writer, "other": other} {
		if v := r.feed.Version(); v != 0 {
			t.Fatalf("%s replica at version %d before COMMIT", name, v)
		}
	}
	reader := openStore(t, s.dbURL)
	if page, err := reader.Page(context.Background(), 0, 10); err != nil || len(page.Topics) != 0 || page.Version != 0 {
		t.Fatalf("another connection sees %+v (%v) before COMMIT", page, err)
	}

	close(release)
	c := <-done
	if c.Version != 1 {
		t.Fatalf("change version %d, want 1", c.Version)
	}
	select {
	case n := <-notices:
		if n.Payload == "" {
			t.Fatal("empty notice")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notice after COMMIT")
	}
	testenv.Eventually(t, 5*time.Second, atVersion("writer", writer, 1))
	testenv.Eventually(t, 5*time.Second, atVersion("other", other, 1))
	page, _, ok := other.feed.List(10)
	if !ok || page.Version != 1 || len(page.Topics) != 1 || page.Topics[0].Comment != "held before commit" {
		t.Fatalf("other replica's list = %+v", page)
	}
}
