package main

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestSlowlorisIsCut: a client that opens a connection and dribbles its
// request headers is closed once the read-header timeout passes, while an
// SSE stream on the same replica stays open long after it (streams have
// no global write or read timeout, only a deadline per write).
func TestSlowlorisIsCut(t *testing.T) {
	c := newCluster(t, "")
	r := c.start("r1", map[string]string{"SSE_HEARTBEAT": "1s"})
	stream := watch(t, "stream", r.URL, "")

	conn, err := net.Dial("tcp", strings.TrimPrefix(r.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan time.Duration, 1)
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := conn.Read(buf); err != nil {
				closed <- time.Since(start)
				return
			}
		}
	}()
	// Keep dribbling one header line a second, as slowloris does.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case d := <-closed:
			t.Logf("slow header sender cut after %v", d.Round(time.Millisecond))
			if stream.check(); t.Failed() {
				return
			}
			r.create(t, "stream still open")
			stream.waitVersion(1, 5*time.Second)
			return
		case <-tick.C:
			_, _ = io.WriteString(conn, "X-Slow: 1\r\n")
		case <-time.After(30 * time.Second):
			t.Fatal("slow header sender still connected after 30s")
		}
	}
}

// TestSlowBodyIsCut: a client that announces a body and sends it one byte
// every 2 s, to a route that reads it (POST) and to one that does not
// (GET /healthz, whose unread body net/http drains), is cut off once the
// time to read a request passes; a stream opened before, on the same
// replica, lives on past that. Before, both stayed open for as long as the
// client liked.
func TestSlowBodyIsCut(t *testing.T) {
	c := newCluster(t, "")
	r := c.start("r1", map[string]string{"SSE_HEARTBEAT": "1s"})
	stream := watch(t, "stream", r.URL, "")
	for _, head := range []string{
		"POST /api/topics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n",
		"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n",
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(r.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
		closed := make(chan time.Duration, 1)
		go func() {
			_, _ = io.Copy(io.Discard, conn) // until the server closes it
			closed <- time.Since(start)
		}()
		tick := time.NewTicker(2 * time.Second)
		func() {
			defer tick.Stop()
			defer conn.Close()
			for {
				select {
				case d := <-closed:
					t.Logf("%q: slow body cut after %v", strings.SplitN(head, "\r\n", 2)[0], d.Round(time.Millisecond))
					return
				case <-tick.C:
					_, _ = io.WriteString(conn, "{")
				case <-time.After(40 * time.Second):
					t.Fatalf("%q: slow body still being read after 40 s", strings.SplitN(head, "\r\n", 2)[0])
				}
			}
		}()
	}
	r.create(t, "the stream outlived the body timeout")
	stream.waitVersion(1, 5*time.Second)
	stream.check()
}
