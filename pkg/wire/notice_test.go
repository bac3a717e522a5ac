package wire_test

import (
	"encoding/json"
	"strings"
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
	if got := n.Domain().Committed; !got.Equal(committed.Truncate(time.Microsecond)) {
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
	if ch := o.Domain(); !ch.Committed.IsZero() || ch.Version != 7 || ch.ID != 3 || ch.Stamp != 99 {
		t.Errorf("old notice became %+v", ch)
	}
	if b, _ := json.Marshal(wire.NoticeOf(topic.Change{Version: 1, Kind: topic.Reset})); string(b) != `{"v":1,"k":"reset","id":0}` {
		t.Errorf("a change without commit time encodes as %s, want no commit field", b)
	}
}

// TestPeekVersion: the version read without decoding is the one a full
// decode finds, for every notice bbs writes; any other beginning is left
// to the full decode.
func TestPeekVersion(t *testing.T) {
	now := time.Now()
	for _, c := range []topic.Change{
		{Version: 1, Kind: topic.Created, ID: 1, Topic: topic.Topic{ID: 1, Comment: "x", CreatedAt: now, UpdatedAt: now}},
		{Version: 9_007_199_254_740_993, Kind: topic.Deleted, ID: 4},
		{Version: 12, Kind: topic.Reset},
	} {
		msg, err := json.Marshal(wire.NoticeOf(c))
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := wire.PeekVersion(msg); !ok || v != c.Version {
			t.Errorf("PeekVersion(%s) = %d, %v; want %d", msg, v, ok, c.Version)
		}
	}
	for _, msg := range []string{``, `{}`, `{"v":}`, `{"v":1`, `{"v":-1,"k":"reset"}`, `{"v":"1"}`, ` {"v":1}`,
		`{"k":"reset","v":1}`, `{"v":99999999999999999999}`, `{"v":1.5}`} {
		if v, ok := wire.PeekVersion([]byte(msg)); ok {
			t.Errorf("PeekVersion(%s) = %d, true; want it left to the decoder", msg, v)
		}
	}
}

// FuzzPeekVersion: whenever PeekVersion reads a version from a message
// that decodes as a notice (with no field given twice), the decoder finds
// the same one.
func FuzzPeekVersion(f *testing.F) {
	f.Add([]byte(`{"v":7,"k":"topic.deleted","id":3,"s":99}`))
	f.Add([]byte(`{"v":0}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		v, ok := wire.PeekVersion(msg)
		var n wire.Notice
		// encoding/json takes the last of fields given twice, and matches
		// names case-insensitively and through escapes; bbs writes each once.
		twice := strings.Count(strings.ToLower(string(msg)), `"v"`) > 1 || strings.Contains(string(msg), `\`)
		if !ok || twice || json.Unmarshal(msg, &n) != nil {
			return
		}
		if n.Version != v {
			t.Fatalf("PeekVersion(%s) = %d, decoded %d", msg, v, n.Version)
		}
	})
}

// TestNoticeKindsKeepTheirSpelling: the domain's kinds are spelled on the
// bus as every release has spelled them (the SSE event names; "reset"), so
// replicas of two releases read each other's notices through a rolling
// update, and each reads back as the kind it was.
func TestNoticeKindsKeepTheirSpelling(t *testing.T) {
	now := time.Now()
	for kind, spelled := range map[topic.Kind]string{
		topic.Created: "topic.created", topic.Updated: "topic.updated", topic.Deleted: "topic.deleted", topic.Reset: "reset",
	} {
		c := topic.Change{Version: 3, Kind: kind}
		if kind == topic.Created || kind == topic.Updated || kind == topic.Deleted {
			c.ID = 2
		}
		if kind == topic.Created || kind == topic.Updated {
			c.Topic = topic.Topic{ID: 2, Comment: "x", CreatedAt: now, UpdatedAt: now}
		}
		n := wire.NoticeOf(c)
		if n.Kind != spelled {
			t.Errorf("%s is spelled %q on the bus, want %q", kind, n.Kind, spelled)
		}
		if err := n.Validate(); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
		if got := n.Domain().Kind; got != kind {
			t.Errorf("%q reads back as %q, want %q", spelled, got, kind)
		}
		if kind != topic.Reset && wire.EventName(kind) != spelled {
			t.Errorf("%s: event name %q, want %q", kind, wire.EventName(kind), spelled)
		}
	}
	if err := (wire.Notice{Version: 1, Kind: "created"}).Validate(); err == nil {
		t.Error("a notice spelling its kind as the domain does was taken")
	}
}
