package wire_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/bbsboard/bbs/pkg/wire"
)

// TestNoticeCarriesCommitTime: the commit time a writer stamps travels in
// the notice (to microseconds) for the delivery-lag metric, and a notice
// without it (from a replica that predates it) is still valid and applies
// the same change, with no commit time.
func TestNoticeCarriesCommitTime(t *testing.T) {
	committed := time.Date(2026, 12, 2, 5, 30, 0, 123456789, time.UTC)
	c := topic.Change{Version: 7, Kind: topic.Deleted, ID: 3, Stamp: 99, Committed: committed}
	msg, err := json.Marshal(wire.NoticeOf(c))
	if err != nil {
		t.Fatal(err)
	}
	var n wire.Notice
	if err := json.Unmarshal(msg, &n); err != nil {
		t.Fatal(err)
	}
	if err := n.Validate(); err != nil {
		t.Fatalf("notice %s: %v", msg, err)
	}
	if got := n.Change().Committed; !got.Equal(committed.Truncate(time.Microsecond)) {
		t.Errorf("commit time %v after the bus, want %v", got, committed.Truncate(time.Microsecond))
	}

	old := []byte(`{"v":7,"k":"topic.deleted","id":3,"s":99}`)
	var o wire.Notice
	if err := json.Unmarshal(old, &o); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("a notice without commit time refused: %v", err)
	}
	if ch := o.Change(); !ch.Committed.IsZero() || ch.Version != 7 || ch.ID != 3 || ch.Stamp != 99 {
		t.Errorf("old notice became %+v", ch)
	}
	if b, _ := json.Marshal(wire.NoticeOf(topic.Change{Version: 1, Kind: topic.Reset})); string(b) != `{"v":1,"k":"reset","id":0}` {
		t.Errorf("a change without commit time encodes as %s, want no commit field", b)
	}
}
