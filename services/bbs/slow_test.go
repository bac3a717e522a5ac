package main

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
)

// tcpStream is an SSE stream on a bare TCP connection, so the test
// controls exactly how (and whether) the client reads.
type tcpStream struct {
	conn net.Conn
}

// openTCPStream requests the stream with a receive buffer of rcvbuf bytes
// (set before connecting, so the TCP window is small from the start): the
// client's kernel takes next to nothing for it, and whatever the client
// does not read piles up on the server's side.
func openTCPStream(t testing.TB, baseURL string, rcvbuf int) *tcpStream {
	t.Helper()
	u, err := url.Parse(baseURL)
	if err != nil {
		t.Fatal(err)
	}
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := fmt.Fprintf(conn, "GET /api/topics/stream HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", u.Host); err != nil {
		t.Fatal(err)
	}
	return &tcpStream{conn: conn}
}

// trickle reads n bytes every interval until the server closes the stream
// (or the test ends), counting what it read.
type trickle struct {
	read  atomic.Int64
	ended chan struct{}
}

func (s *tcpStream) trickle(t testing.TB, n int, every time.Duration) *trickle {
	tr := &trickle{ended: make(chan struct{})}
	go func() {
		defer close(tr.ended)
		buf := make([]byte, n)
		for {
			k, err := s.conn.Read(buf)
			tr.read.Add(int64(k))
			if err != nil {
				return
			}
			time.Sleep(every)
		}
	}()
	t.Cleanup(func() {
		s.conn.Close()
		<-tr.ended
	})
	return tr
}

// bigComment is a comment at the 2000 code point limit made of 4-byte
// characters: about 8 KB per event on the wire, so a few hundred writes
// push megabytes through every stream.
func bigComment(i int) string {
	head := fmt.Sprintf("big %d ", i)
	return head + strings.Repeat("😀", 2000-len(head))
}

// TestSlowAndStalledClients: ten clients open the stream and never read,
// one reads 8 bytes every 100 ms, three read normally. About 8 MB of
// events go out on every stream: more than the kernel can buffer for a
// stalled one (Linux's default tcp_wmem maximum is 4 MB), so each stalled
// stream's handler blocks and its 64-frame queue certainly overflows.
//
// The normal clients get every event, in order, within a few seconds of
// each write: the stalled ones delay nobody. Every overflow is counted in
// bbs_stream_overflows_total. What the server holds stays bounded: its
// live heap grows by the backlog of recent frames it keeps by design, not
// by what the stalled clients failed to read. The write deadline finally
// cuts the stalled clients off and leaves the normal ones be.
func TestSlowAndStalledClients(t *testing.T) {
	c := newCluster(t, "")
	r := startReplicas(c, map[string]string{"SSE_HEARTBEAT": "1s"}, "r1")[0]
	writer := startReplicas(c, nil, "writer")[0] // writes reach r1 over pub/sub, as in production

	var normal []*view
	for i := 0; i < 3; i++ {
		normal = append(normal, watch(t, fmt.Sprintf("normal%d", i), r.URL, ""))
	}
	const stalledClients = 10
	for i := 0; i < stalledClients; i++ {
		openTCPStream(t, r.URL, 4096) // and never read
	}
	slow := openTCPStream(t, r.URL, 4096).trickle(t, 8, 100*time.Millisecond)
	streams := float64(len(normal) + stalledClients + 1)
	testenv.Eventually(t, 5*time.Second, func() error {
		if n := r.metric(t, "bbs_streams_open"); n < streams {
			return fmt.Errorf("%v streams open on r1, want %v", n, streams)
		}
		return nil
	})
	heapBefore := liveHeap()
	rssBefore := r.metric(t, "process_resident_memory_bytes")
	goroutinesBefore := r.metric(t, "go_goroutines")

	// Writes in batches from concurrent writers; after each batch, the time
	// until every normal client shows it.
	const batches, perBatch, workers = 10, 100, 16
	var written int64
	var slowestLag time.Duration
	start := time.Now()
	for b := 0; b < batches; b++ {
		var wg sync.WaitGroup
		var next atomic.Int64
		for w := 0; w < workers; w++ {
			wg.Go(func() {
				for i := next.Add(1); i <= perBatch; i = next.Add(1) {
					if _, o := tryCreate(writer.URL, bigComment(b*perBatch+int(i))); o.Status != http.StatusCreated {
						t.Errorf("POST: %v", o)
					}
				}
			})
		}
		wg.Wait()
		written += perBatch
		lag := waitViews(normal, written, 10*time.Second)
		slowestLag = max(slowestLag, lag)
		if lag > 5*time.Second {
			t.Errorf("batch %d: normal clients %v behind the writes", b, lag)
		}
	}
	elapsed := time.Since(start)
	testenv.CloseIdleConnections() // the writers' keep-alives are not the server's doing
	time.Sleep(100 * time.Millisecond)
	heapAfter := liveHeap()
	rssAfter := r.metric(t, "process_resident_memory_bytes")
	goroutinesAfter := r.metric(t, "go_goroutines")
	pushed := written * int64(len(bigComment(0)))
	t.Logf("%d writes (%.1f MB per stream) in %v; normal clients at most %d ms behind a batch; slow client read %d bytes",
		written, float64(pushed)/(1<<20), elapsed.Round(time.Millisecond), slowestLag.Milliseconds(), slow.read.Load())
	t.Logf("live heap after GC %+.1f MB, resident memory %+.1f MB, goroutines %+v",
		float64(int64(heapAfter)-int64(heapBefore))/(1<<20), (rssAfter-rssBefore)/(1<<20), goroutinesAfter-goroutinesBefore)

	// Every event, in order, to every normal client: one snapshot at 0,
	// then each version once. No resync was needed, so nothing was dropped.
	want := r.list(t)
	for _, v := range normal {
		v.check()
		sameList(t, v.name, v.state(), want)
		seen := v.seen()
		inOrder := len(seen) == int(written)+1
		for i := 0; inOrder && i < len(seen); i++ {
			inOrder = seen[i] == int64(i)
		}
		if !inOrder {
			t.Errorf("%s: saw %d versions, want the snapshot at 0 then 1..%d each once", v.name, len(seen), written)
		}
	}
	// The server keeps the recent frames (on r1 and on the writer) for
	// resumes; anything like the stalled clients' unread megabytes on top
	// (8 MB each) would show.
	if grown := int64(heapAfter) - int64(heapBefore); grown > 2*pushed+32<<20 {
		t.Errorf("live heap grew by %.0f MB with %d stalled clients: more than the backlog of recent frames", float64(grown)/(1<<20), stalledClients)
	}
	if grown := goroutinesAfter - goroutinesBefore; grown > 20 {
		t.Errorf("%v more goroutines after the writes", grown)
	}

	// The write deadline (15s per write) cuts the stalled clients off; the
	// normal ones stay.
	cutStart := time.Now()
	for r.metric(t, "bbs_streams_open") > float64(len(normal)) {
		if time.Since(cutStart) > 30*time.Second {
			t.Fatalf("%v streams still open on r1 30s after the writes, want the %d normal ones", r.metric(t, "bbs_streams_open"), len(normal))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("stalled and slow clients cut off %v after the last write", time.Since(cutStart).Round(100*time.Millisecond))
	// Each stalled stream and the slow one overflowed its queue at least
	// once (their handlers were blocked writing while hundreds of frames
	// went out); by now, cut off, every one must have been counted.
	if overflows := r.metric(t, "bbs_stream_overflows_total"); overflows < stalledClients+1 {
		t.Errorf("bbs_stream_overflows_total = %v, want at least %d: every stalled stream overflowed its queue", overflows, stalledClients+1)
	}
	for _, v := range normal {
		if !streamOpen(v) {
			t.Errorf("%s: a normal client's stream was closed", v.name)
		}
	}
}

// liveHeap is the heap in use after a collection. The replicas run in
// this process, so it is the servers' live memory (plus the test's own
// small share), where resident memory would also count garbage not yet
// returned to the system.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
