package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/store"
	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/topic"
)

// TestResumeCostIsBounded: 5,000 changes with the longest comments (2,000
// '<' characters, 12 KB of JSON each) and then 50 clients from one address
// resuming from the first version and never reading. What a resume costs
// does not depend on who asks: a replay longer than a stream's queue is a
// snapshot, encoded once and shared. The bound: the replica's heap grows by
// less than 16 MiB for all 50 (the shared snapshot of 100 long topics is
// 1.2 MB). Before, each such stream cost 12.7 MiB (1,000 frames encoded
// for it alone, read from the log under the feed's lock).
func TestResumeCostIsBounded(t *testing.T) {
	c := newCluster(t, "")
	r := c.start("r1", map[string]string{"MAX_STREAMS_PER_CLIENT": "1000", "VERSION_CHECK": "200ms"})
	st, err := store.Open(context.Background(), c.base["DATABASE_URL"], slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	long := strings.Repeat("<", 2000)
	const changes = 5000
	for i := range changes {
		_, hash := topic.NewToken()
		if _, _, err := st.Create(context.Background(), fmt.Sprintf("%s %d", long, i), hash); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if v := r.list(t).Version; v != changes {
			return fmt.Errorf("replica at %d, want %d", v, changes)
		}
		return nil
	})
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	addr := strings.TrimPrefix(r.URL, "http://")
	before := heap()
	var conns []net.Conn
	for range 50 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		if _, err := fmt.Fprintf(conn, "GET /api/topics/stream HTTP/1.1\r\nHost: bbs\r\nLast-Event-ID: 1\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := r.metric(t, "bbs_streams_open"); n < 50 {
			return fmt.Errorf("%v streams open, want 50", n)
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond) // let every stream write what it can
	grew := int64(heap()) - int64(before)
	t.Logf("50 non-reading resumes from version 1 of %d long changes: heap +%.1f MiB (%.0f KiB per stream)",
		changes, float64(grew)/(1<<20), float64(grew)/50/1024)
	if grew > 16<<20 {
		t.Fatalf("heap grew %.1f MiB for 50 resumes, bound 16 MiB", float64(grew)/(1<<20))
	}
}
