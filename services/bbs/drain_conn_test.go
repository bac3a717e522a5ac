package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/wire"
)

// TestSIGTERMAnswersEveryRequest: a replica process gets SIGTERM while
// clients keep sending GET, POST, PATCH and DELETE over kept-alive
// connections, as a load balancer's upstream pool does. Every request that
// was sent on a connection the replica accepted gets a whole answer with
// the expected status: never an EOF or a reset, on a kept-alive connection
// or on a new one. Once a client has seen the drain (a response with
// `Connection: close`), every later response says `Connection: close` too,
// so the client closes the connection itself and never reuses it. The
// replica keeps answering for DRAIN_DELAY while /readyz says 503, and only
// then closes its listener: after that, a client's connection is refused
// (it was never sent: a load balancer retries it elsewhere).
func TestSIGTERMAnswersEveryRequest(t *testing.T) {
	c := newCluster(t, "")
	delay := time.Second
	p := c.startProcess("draining", map[string]string{"DRAIN_DELAY": delay.String()})
	addr := strings.TrimPrefix(p.URL, "http://")

	const (
		clients     = 16
		maxRequests = 3000 // per client
	)
	rec := &drainRecord{}
	deadline := time.Now().Add(20 * time.Second)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			cl := &keptAliveClient{addr: addr, rec: rec, name: fmt.Sprintf("client%d", i)}
			defer cl.close()
			for n := 0; n < maxRequests && time.Now().Before(deadline); n++ {
				if !cl.cycle(p.URL, n) {
					return
				}
				// Idle a little between requests, as an upstream pool's
				// connections are: a replica that closes an idle
				// kept-alive connection races with the next request.
				time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
			}
		})
	}

	// Readiness goes to 503 at once, on a listener that stays open.
	readyz := make(chan []int, 1)
	polling := make(chan struct{})
	go func() {
		var codes []int
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
		for time.Now().Before(deadline) {
			resp, err := client.Get(p.URL + "/readyz")
			if err != nil {
				break
			}
			resp.Body.Close()
			if len(codes) == 0 {
				close(polling)
			}
			if len(codes) == 0 || codes[len(codes)-1] != resp.StatusCode {
				codes = append(codes, resp.StatusCode)
			}
			time.Sleep(20 * time.Millisecond)
		}
		readyz <- codes
	}()
	<-polling
	time.Sleep(time.Second)
	signalled := time.Now()
	took, err := p.signal(syscall.SIGTERM, 15*time.Second)
	wg.Wait()
	if err != nil {
		t.Fatalf("drained replica exited with %v, want 0", err)
	}
	codes := <-readyz

	rec.mu.Lock()
	defer rec.mu.Unlock()
	t.Logf("SIGTERM: exit 0 after %v (DRAIN_DELAY %v); %d answers before the signal, %d after it (%d with Connection: close), %d refused connections after the listener closed; /readyz answered %v",
		took.Round(time.Millisecond), delay, rec.before(signalled), len(rec.answers)-rec.before(signalled), rec.closing, rec.refused, codes)
	for _, f := range rec.failures {
		t.Error(f)
	}
	if len(codes) < 2 || codes[0] != http.StatusOK || codes[len(codes)-1] != http.StatusServiceUnavailable {
		t.Errorf("/readyz answered %v during the drain: want 200, then 503 while the listener is still open", codes)
	}
	// The replica kept answering through the delay, and said it was closing.
	if rec.closing == 0 || rec.lastAnswer.Sub(signalled) < delay/2 {
		t.Errorf("%d answers with Connection: close, the last %v after SIGTERM: want answers through DRAIN_DELAY %v",
			rec.closing, rec.lastAnswer.Sub(signalled).Round(time.Millisecond), delay)
	}
	if took < delay {
		t.Errorf("exited %v after SIGTERM, before DRAIN_DELAY %v", took, delay)
	}
}

// drainRecord is what every client saw.
type drainRecord struct {
	mu         sync.Mutex
	answers    []time.Time // when each whole answer arrived
	closing    int         // answers with Connection: close
	firstClose time.Time   // when the first of them arrived
	lastAnswer time.Time
	refused    int
	failures   []string
}

func (r *drainRecord) before(at time.Time) int {
	n := 0
	for _, a := range r.answers {
		if a.Before(at) {
			n++
		}
	}
	return n
}

func (r *drainRecord) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.failures) < 20 {
		r.failures = append(r.failures, fmt.Sprintf(format, args...))
	}
}

// keptAliveClient sends requests one at a time on one connection, kept alive
// until an answer says Connection: close, as nginx's upstream pool does.
// It does not retry anything: every error is seen.
type keptAliveClient struct {
	addr string
	name string
	rec  *drainRecord
	conn net.Conn
	br   *bufio.Reader
}

func (c *keptAliveClient) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// cycle creates a topic, edits it, reads the first page and deletes the
// topic. It returns false once the listener is closed (or on a failure).
func (c *keptAliveClient) cycle(base string, n int) bool {
	var created wire.Created
	comment := fmt.Sprintf("%s %d", c.name, n)
	if !c.do("POST", base+"/api/topics", "", wire.CommentBody{Comment: comment}, http.StatusCreated, &created) {
		return false
	}
	url := fmt.Sprintf("%s/api/topics/%d", base, created.Topic.ID)
	return c.do("PATCH", url, created.Token, wire.CommentBody{Comment: comment + " (edited)"}, http.StatusOK, nil) &&
		c.do("GET", base+"/api/topics?limit=5", "", nil, http.StatusOK, nil) &&
		c.do("DELETE", url, created.Token, nil, http.StatusNoContent, nil)
}

// do sends one request and reads its whole answer. A refused connection
// ends the client quietly (the request never reached the replica); any
// other error, a cut answer or an unexpected status is a failure.
func (c *keptAliveClient) do(method, url, token string, body any, want int, out any) bool {
	req, err := testenv.Request{Method: method, URL: url, Token: token, JSON: body}.NewRequest(context.Background())
	if err != nil {
		c.rec.fail("%s: %v", c.name, err)
		return false
	}
	reused := c.conn != nil
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if errors.Is(err, syscall.ECONNREFUSED) {
			c.rec.mu.Lock()
			c.rec.refused++
			c.rec.mu.Unlock()
			return false
		}
		if err != nil {
			c.rec.fail("%s: %s %s: dial: %v", c.name, method, url, err)
			return false
		}
		c.conn, c.br = conn, bufio.NewReader(conn)
	}
	// A request sent after the client saw the drain must be answered with
	// Connection: close.
	c.rec.mu.Lock()
	sentAfterDrainSeen := !c.rec.firstClose.IsZero()
	c.rec.mu.Unlock()
	_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	sent := time.Now()
	fail := func(stage string, err error) bool {
		c.rec.fail("%s: %s %s (%s connection %s, sent at %s, failed at %s): %s: %v: a request the replica accepted got no whole answer",
			c.name, method, url, map[bool]string{true: "kept-alive", false: "new"}[reused], c.conn.LocalAddr(),
			sent.Format("15:04:05.000000"), time.Now().Format("15:04:05.000000"), stage, err)
		c.close()
		return false
	}
	if err := req.Write(c.conn); err != nil {
		return fail("write", err)
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		return fail("read head", err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fail("read body", err)
	}
	now := time.Now()
	c.rec.mu.Lock()
	c.rec.answers = append(c.rec.answers, now)
	c.rec.lastAnswer = now
	if resp.Close {
		c.rec.closing++
		if c.rec.firstClose.IsZero() {
			c.rec.firstClose = now
		}
	}
	c.rec.mu.Unlock()
	if resp.Close {
		c.close()
	} else if sentAfterDrainSeen {
		c.rec.fail("%s: %s %s sent after the drain began: answered without Connection: close", c.name, method, url)
	}
	if resp.StatusCode != want {
		c.rec.fail("%s: %s %s: %d %s, want %d", c.name, method, url, resp.StatusCode, data, want)
		return false
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			c.rec.fail("%s: %s %s: %v", c.name, method, url, err)
			return false
		}
	}
	return true
}
