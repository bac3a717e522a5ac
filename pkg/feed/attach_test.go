package feed_test

import (
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/feed"
	"github.com/bbsboard/bbs/pkg/sse"
	"github.com/bbsboard/bbs/pkg/testenv"
)

// TestSnapshotEncodedOncePerVersion: streams that connect at the same
// version share one encoded snapshot event. Attaching 50 of them to a
// window of about 100 KiB must not allocate anything near 50 copies.
func TestSnapshotEncodedOncePerVersion(t *testing.T) {
	s := newSetup(t, "")
	r := s.start(t, feed.Config{})
	for range 100 {
		r.write(t, strings.Repeat("x", 1000))
	}
	testenv.Eventually(t, 5*time.Second, atVersion("replica", r, 100))

	const streams = 50
	conns := make([]net.Conn, streams)
	for i := range conns {
		conns[i], _ = testenv.ConnPair(t)
	}
	// The first attach encodes the snapshot; the others must reuse it.
	attach := func(conn net.Conn) {
		st, err := r.hub.NewStream(conn, sse.StreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.feed.Attach(context.Background(), st, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	attach(conns[0])
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, c := range conns[1:] {
		attach(c)
	}
	runtime.ReadMemStats(&after)
	window := 100 * 1000
	if grown := after.TotalAlloc - before.TotalAlloc; grown > uint64(5*window) {
		t.Fatalf("%d more streams allocated %d bytes: the %d-byte snapshot was copied for each", streams-1, grown, window)
	}
}
