package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// holdProxy is a TCP proxy in front of a replica that can hold back what
// the server sends on stream connections (GET /api/topics/stream), as a
// proxy that buffers responses does; everything else passes at once.
type holdProxy struct {
	url    string
	target string

	mu      sync.Mutex
	hold    bool
	conns   []*proxyConn
	streams int // stream requests seen
}

type proxyConn struct {
	client  net.Conn
	mu      sync.Mutex
	stream  bool   // the connection carries the event stream
	pending []byte // held back from the client
}

func startHoldProxy(t *testing.T, targetURL string) *holdProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdProxy{url: "http://" + ln.Addr().String(), target: strings.TrimPrefix(targetURL, "http://")}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.client.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.serve(client) })
		}
	})
	return p
}

func (p *holdProxy) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	c := &proxyConn{client: client}
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				if strings.Contains(string(buf[:n]), "GET /api/topics/stream") {
					c.mu.Lock()
					c.stream = true
					c.mu.Unlock()
					p.mu.Lock()
					p.streams++
					p.mu.Unlock()
				}
				if _, werr := server.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				server.(*net.TCPConn).CloseWrite()
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			p.mu.Lock()
			hold := p.hold
			p.mu.Unlock()
			c.mu.Lock()
			if hold && c.stream {
				c.pending = append(c.pending, buf[:n]...)
			} else {
				c.flushLocked()
				client.Write(buf[:n])
			}
			c.mu.Unlock()
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				client.Close()
			}
			break
		}
	}
	<-done
}

func (c *proxyConn) flushLocked() {
	if len(c.pending) > 0 {
		c.client.Write(c.pending)
		c.pending = nil
	}
}

// setHold starts or stops holding back the streams; stopping sends what
// was held.
func (p *holdProxy) setHold(on bool) {
	p.mu.Lock()
	p.hold = on
	conns := append([]*proxyConn(nil), p.conns...)
	p.mu.Unlock()
	if !on {
		for _, c := range conns {
			c.mu.Lock()
			c.flushLocked()
			c.mu.Unlock()
		}
	}
}

// TestDelayedBehindBufferingProxy: a proxy between the browser and the
// replica holds the stream back. The page notices the silence, says
// "delayed" and still shows a new post within seconds by polling the first
// page; once the proxy lets the stream through, it is "live" again, with
// exactly the API's list.
func TestDelayedBehindBufferingProxy(t *testing.T) {
	br := startBrowser(t)
	// A heartbeat of 1 s, which the server tells the page: the page takes
	// a stream silent for 2 s as held back (with the default 15 s, and a
	// page that assumed it, the test would wait 30 s and fail).
	c := startCluster(t, clusterOptions{replicas: 1, env: []string{"SSE_HEARTBEAT=1s"}})
	px := startHoldProxy(t, c.replicas[0].URL)
	p := br.open(t, "reader", px.url, tabOptions{})
	p.waitLive()
	if beat := eval[string](p, `document.querySelector('meta[name="bbs-heartbeat"]').content`); beat != "1000" {
		t.Fatalf("the page says the heartbeat is %q ms, want 1000", beat)
	}

	p.clearLog()
	px.setHold(true)
	held := time.Now()
	tp, _ := postTopic(t, c.replicas[0].URL, "posted while a proxy holds the stream "+randomName(""))
	posted := time.Now()
	p.waitFor("delayed, with the new post", 10*time.Second, func(s shown) bool {
		_, ok := s.find(tp.ID)
		return ok && s.State == "delayed"
	})
	t.Logf("stream held: the page says delayed and shows the new post %d ms after the post (%d ms after the hold began)",
		time.Since(posted).Milliseconds(), time.Since(held).Milliseconds())
	if at, ok := p.firstSeen(func(s shown) bool { return s.State == "delayed" }); ok {
		t.Logf("FIGURE delayed: %d ms from the proxy holding the stream to the page saying delayed (threshold 2 × the 1 s heartbeat)", at-held.UnixMilli())
	}
	shoot(t, p, screenshotDir(t), "delayed")
	// It stays current while delayed.
	tp2, _ := postTopic(t, c.replicas[0].URL, "a second post while held "+randomName(""))
	p.waitFor("the second post while delayed", 10*time.Second, func(s shown) bool {
		_, ok := s.find(tp2.ID)
		return ok && s.State == "delayed"
	})

	p.clearLog()
	released := time.Now()
	px.setHold(false)
	p.waitFor("live again", 10*time.Second, func(s shown) bool { return s.State == "live" })
	t.Logf("stream let through: live again %d ms later", time.Since(released).Milliseconds())
	if at, ok := p.firstSeen(func(s shown) bool { return s.State == "live" }); ok {
		t.Logf("FIGURE live again: %d ms from the proxy letting the stream through to the page saying live", at-released.UnixMilli())
	}

	tp3, _ := postTopic(t, c.replicas[0].URL, "after the proxy let go "+randomName(""))
	want := listTopics(t, c.replicas[0].URL)
	p.waitFor("the API's list, live", liveWithin, func(s shown) bool {
		_, ok := s.find(tp3.ID)
		return ok && s.State == "live" && sameList(s, want)
	})
	p.checkClean(nil)
}

// cutStreams closes every stream connection, as a proxy with a short
// timeout does.
func (p *holdProxy) cutStreams() {
	p.mu.Lock()
	conns := append([]*proxyConn(nil), p.conns...)
	p.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		if c.stream {
			c.client.Close()
		}
		c.mu.Unlock()
	}
}

func (p *holdProxy) streamCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.streams
}

// TestStreamCutByProxy: a proxy cuts the stream every 2 s. Posts still show
// within seconds, the page does not reconnect at once again and again (it
// backs off, with jitter, and polls meanwhile), and once the cuts stop it
// is live again with exactly the API's list.
func TestStreamCutByProxy(t *testing.T) {
	br := startBrowser(t)
	c := startCluster(t, clusterOptions{replicas: 1})
	px := startHoldProxy(t, c.replicas[0].URL)
	p := br.open(t, "reader", px.url, tabOptions{script: `localStorage.setItem('bbs.delayedMs', '2000')`})
	p.waitLive()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				px.cutStreams()
			}
		}
	})
	before, cutFrom := px.streamCount(), time.Now()
	for i := range 4 {
		tp, _ := postTopic(t, c.replicas[0].URL, fmt.Sprintf("posted while the stream is cut %d %s", i, randomName("")))
		posted := time.Now()
		s := p.waitFor("a post while the stream is cut", liveWithin, func(s shown) bool { _, ok := s.find(tp.ID); return ok })
		t.Logf("post %d shown %d ms later (page: %s)", i, time.Since(posted).Milliseconds(), s.State)
		time.Sleep(3 * time.Second)
	}
	close(stop)
	wg.Wait()
	t.Logf("stream cut every 2 s for %.0f s: the page opened %d streams", time.Since(cutFrom).Seconds(), px.streamCount()-before)

	stopped := time.Now()
	p.waitFor("live again", 45*time.Second, func(s shown) bool { return s.State == "live" })
	t.Logf("cuts stopped: live again %d ms later", time.Since(stopped).Milliseconds())
	want := listTopics(t, c.replicas[0].URL)
	p.waitFor("the API's list", liveWithin, func(s shown) bool { return sameList(s, want) })
	// A cut stream is logged by the browser as a failed load.
	p.checkClean(func(pr problem) bool { return pr.source == "network" })
}
