package sse_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/bbsboard/bbs/pkg/sse"
)

func TestEncode(t *testing.T) {
	f := sse.Encode(7, "topic.created", []byte(`{"a":1}`))
	if got, want := string(f.Data), "id: 7\nevent: topic.created\ndata: {\"a\":1}\n\n"; got != want {
		t.Fatalf("frame %q, want %q", got, want)
	}
	if f.Version != 7 {
		t.Fatalf("version %d", f.Version)
	}
	// The empty board is version 0, and its snapshot carries id: 0 like
	// every event (it had none before).
	if got := string(sse.Encode(0, "snapshot", []byte("{}")).Data); !strings.HasPrefix(got, "id: 0\n") {
		t.Fatalf("version 0 frame %q has no id", got)
	}
}

// FuzzEncodeKeepsFraming: whatever the data and event name, the frame reads
// back as exactly one event with the same id, name and data (line ends in
// data normalised to \n, as the SSE spec does), so a comment containing
// "\n\ndata: x" can never end the event early or forge another.
func FuzzEncodeKeepsFraming(f *testing.F) {
	for _, s := range []string{"", "plain", "a\n\ndata: x", "\r\n\r\nevent: evil", "id: 9\n", "x\r", "\n", ":comment\n\n"} {
		f.Add(int64(3), "topic.created", s)
		f.Add(int64(1), "evil\n\ndata: x", s)
	}
	f.Fuzz(func(t *testing.T, id int64, event, data string) {
		if id < 0 {
			id = -id
		}
		frame := sse.Encode(id, event, []byte(data))
		if !bytes.HasSuffix(frame.Data, []byte("\n\n")) || bytes.Count(frame.Data, []byte("\n\n")) != 1 {
			t.Fatalf("frame %q is not exactly one event", frame.Data)
		}
		r := sse.NewReader(bytes.NewReader(frame.Data))
		ev, err := r.Next()
		if err != nil {
			t.Fatalf("frame %q: %v", frame.Data, err)
		}
		wantName := strings.NewReplacer("\r", "", "\n", "").Replace(event)
		if wantName == "" {
			wantName = "message"
		}
		wantData := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(data)
		if ev.Name != wantName || ev.Data != wantData || r.LastID() != strconv.FormatInt(id, 10) {
			t.Fatalf("frame %q read back as %+v (id %q), want name %q data %q", frame.Data, ev, r.LastID(), wantName, wantData)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
