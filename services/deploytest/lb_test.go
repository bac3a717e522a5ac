package deploytest

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLoadBalancer runs the make cluster configuration for real: nginx in
// front of three replicas on Postgres and Redis, over HTTP/1.1 and over
// HTTPS with HTTP/2.
func TestLoadBalancer(t *testing.T) {
	st := startStack(t, map[string]string{
		"SSE_HEARTBEAT": "1s",
		"WRITE_RATE":    "30", // per minute, per client address
		"WRITE_BURST":   "3",
	})
	t.Run("StreamUnbuffered", func(t *testing.T) { testStreamUnbuffered(t, st) })
	t.Run("SpreadsLoad", func(t *testing.T) { testSpreadsLoad(t, st) })
	t.Run("ForwardsClientAddress", func(t *testing.T) { testForwardsClientAddress(t, st) })
	t.Run("InternalEndpointsNotRouted", func(t *testing.T) { testInternalEndpointsNotRouted(t, st) })
	t.Run("HTTP2", func(t *testing.T) { testHTTP2(t, st) })
}

// testInternalEndpointsNotRouted: metrics, readiness details and pprof are
// refused through the load balancer, by nginx itself (no replica answers:
// no X-Replica), and by the replicas' public port too; the public /readyz
// says only its status; the replicas' internal listeners do serve them.
// Before, GET /metrics through nginx answered 200 with every metric.
func testInternalEndpointsNotRouted(t *testing.T, st *stack) {
	fetch := func(u string) (int, http.Header, string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/profile?seconds=1"} {
		code, h, body := fetch("http://" + st.LB + path)
		if code != http.StatusNotFound || h.Get("X-Replica") != "" || !strings.Contains(body, `"not_found"`) {
			t.Errorf("GET %s through nginx: %d (X-Replica %q) %.80q, want nginx's own JSON 404", path, code, h.Get("X-Replica"), body)
		}
		code, _, _ = fetch("http://" + st.Replicas[0].Addr + path)
		if code != http.StatusNotFound {
			t.Errorf("GET %s on a replica's public port: %d, want 404", path, code)
		}
	}
	code, _, body := fetch("http://" + st.LB + "/readyz")
	if code != http.StatusOK || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Errorf("GET /readyz through nginx: %d %s, want 200 with the status alone", code, body)
	}
	for _, r := range st.Replicas {
		if code, _, body := fetch("http://" + r.Internal + "/metrics"); code != http.StatusOK || !strings.Contains(body, "bbs_http_requests_total") {
			t.Errorf("%s: internal /metrics: %d, want 200 with the metrics", r.ID, code)
		}
		if code, _, body := fetch("http://" + r.Internal + "/readyz"); code != http.StatusOK || !strings.Contains(body, `"dependencies"`) {
			t.Errorf("%s: internal /readyz: %d %s, want the details", r.ID, code, body)
		}
	}
}

// line is one line of a stream, with when it arrived.
type line struct {
	at   time.Time
	text string
}

// openStream connects to the stream through nginx and delivers its lines.
func openStream(t *testing.T, base string) (*http.Response, <-chan line) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+base+"/api/topics/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan line, 1024)
	go func() {
		defer close(lines)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- line{time.Now(), sc.Text()}
		}
	}()
	return resp, lines
}

// waitLine returns the first line with the prefix, or fails after within.
func waitLine(t *testing.T, lines <-chan line, prefix string, within time.Duration) line {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended before %q", prefix)
			}
			if strings.HasPrefix(l.text, prefix) {
				return l
			}
		case <-timeout:
			t.Fatalf("no %q within %v: is nginx buffering the stream?", prefix, within)
		}
	}
}

func testStreamUnbuffered(t *testing.T, st *stack) {
	start := time.Now()
	resp, lines := openStream(t, st.LB)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("through nginx: Content-Type %q, Content-Encoding %q", ct, resp.Header.Get("Content-Encoding"))
	}
	// Buffered, the snapshot would wait for nginx's buffer to fill: for a
	// small board, until the stream ends.
	snap := waitLine(t, lines, "event: snapshot", 3*time.Second)
	t.Logf("first event (snapshot) through nginx %v after connecting", snap.at.Sub(start).Round(time.Millisecond))

	// Heartbeats (SSE_HEARTBEAT=1s) must arrive one by one, each when it
	// is sent: buffered, none would arrive, or several at once.
	var beats []time.Time
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); {
		beats = append(beats, waitLine(t, lines, ":", 3*time.Second).at)
	}
	var gaps []time.Duration
	apart := 0
	for i := 1; i < len(beats); i++ {
		g := beats[i].Sub(beats[i-1])
		gaps = append(gaps, g.Round(time.Millisecond))
		if g > 300*time.Millisecond {
			apart++
		}
	}
	t.Logf("heartbeat gaps through nginx: %v", gaps)
	if len(beats) < 3 || apart < len(gaps)/2 {
		t.Errorf("%d heartbeats in 4s, gaps %v: want one about every second", len(beats), gaps)
	}

	// A write through nginx reaches the stream through nginx.
	posted := time.Now()
	if code := post(t, http.DefaultClient, st.LB, "through the load balancer", nil); code != http.StatusCreated {
		t.Fatalf("POST through nginx: %d", code)
	}
	ev := waitLine(t, lines, "event: topic.created", 3*time.Second)
	t.Logf("a write's event through nginx %v after the POST was sent", ev.at.Sub(posted).Round(time.Millisecond))
}

func testSpreadsLoad(t *testing.T, st *stack) {
	seen := map[string]int{}
	for range 30 {
		resp, err := http.Get("http://" + st.LB + "/api/topics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		seen[resp.Header.Get("X-Replica")]++
	}
	t.Logf("30 GETs through nginx, answered by: %v", seen)
	for _, r := range st.Replicas {
		if seen[r.ID] == 0 {
			t.Errorf("replica %s got none of 30 requests: %v", r.ID, seen)
		}
	}
}

// testForwardsClientAddress: the replicas see each client's own address
// (through X-Forwarded-For from nginx, a trusted proxy), so the write limit
// applies per client, and a client cannot pick its address by sending the
// header itself.
func testForwardsClientAddress(t *testing.T, st *stack) {
	from := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	}
	spoof := map[string]string{"X-Forwarded-For": "203.0.113.7"}
	a := from("127.0.0.2")
	var codes []int
	for range 4 { // WRITE_BURST is 3
		codes = append(codes, post(t, a, st.LB, "from 127.0.0.2", spoof))
	}
	if codes[0] != http.StatusCreated || codes[3] != http.StatusTooManyRequests {
		t.Errorf("4 writes from one client (X-Forwarded-For forged): %v, want 201s then 429", codes)
	}
	if code := post(t, from("127.0.0.3"), st.LB, "from 127.0.0.3", nil); code != http.StatusCreated {
		t.Errorf("another client's write: %d, want 201 (its own budget)", code)
	}
}
