package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/bbsboard/bbs/pkg/sse"
	"github.com/bbsboard/bbs/pkg/wire"
)

// client is an SSE client as a browser page is: it holds a view (the
// snapshot with every later event applied by wire.ApplyEvent), resumes on
// another replica with Last-Event-ID, and, in chaos, leaves on its own or
// reloads the page. A slow client reads with pauses through a small
// socket buffer, so the server's queue for it fills.
type client struct {
	h    *harness
	name string
	slow bool
	rng  *rand.Rand
	hc   *http.Client

	mu      sync.Mutex
	has     bool // holds a view
	version int64
	limit   int
	view    []wire.Topic
	on      string // replica it is connected to, "" when not
	retry   time.Duration
	chaos   bool
}

// silence is how long a stream may stay quiet (heartbeats every 1 s)
// before the client gives up on it, as the page does.
const silence = 3 * time.Second

func newClient(h *harness, i int, slow bool, seed uint64) *client {
	c := &client{h: h, name: fmt.Sprintf("c%d", i+1), slow: slow, rng: rand.New(rand.NewPCG(seed, 100+uint64(i))), retry: 300 * time.Millisecond}
	if slow {
		c.name += "-slow"
	}
	d := &net.Dialer{Timeout: 2 * time.Second}
	if slow {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			return errors.Join(err, serr)
		}
	}
	c.hc = &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true, ResponseHeaderTimeout: requestBound}}
	return c
}

func (c *client) setChaos(on bool) { c.mu.Lock(); c.chaos = on; c.mu.Unlock() }

// state is what the convergence check reads.
func (c *client) state() (on string, has bool, version int64, view []wire.Topic) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.on, c.has, c.version, append([]wire.Topic(nil), c.view...)
}

func (c *client) run(ctx context.Context) {
	last := -1
	for ctx.Err() == nil {
		up := c.h.cl.up()
		if len(up) == 0 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		r := up[c.rng.IntN(len(up))]
		if len(up) > 1 && r.idx == last {
			r = up[(c.rng.IntN(len(up)-1)+1+indexOf(up, r))%len(up)]
		}
		last = r.idx
		c.mu.Lock()
		if c.chaos && c.rng.IntN(20) == 0 {
			c.has = false // a page reload: a new view, no Last-Event-ID
		}
		lifetime := time.Duration(0)
		if c.chaos {
			lifetime = time.Duration(c.rng.ExpFloat64() * float64(4*time.Second))
		}
		c.mu.Unlock()
		c.stream(ctx, r, lifetime)
		c.mu.Lock()
		c.on = ""
		wait := min(c.retry, time.Second)
		c.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

func indexOf(rs []*replica, r *replica) int {
	for i, x := range rs {
		if x == r {
			return i
		}
	}
	return 0
}

// stream holds one connection until it ends, the client leaves (after
// lifetime, 0: never) or it stays silent too long.
func (c *client) stream(ctx context.Context, r *replica, lifetime time.Duration) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", r.url()+"/api/topics/stream", nil)
	c.mu.Lock()
	resume, from := c.has, c.version
	c.mu.Unlock()
	if resume {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(from, 10))
		c.h.stats.inc("clients resumes with Last-Event-ID")
	} else {
		c.h.stats.inc("clients fresh connects")
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	o := outcome{start: start, took: time.Since(start), err: err}
	if err != nil {
		if ctx.Err() == nil {
			c.h.judge("stream", r, o, "connect failed: "+err.Error())
		}
		return
	}
	defer resp.Body.Close()
	o.status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		var e wire.Error
		_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e)
		o.code = e.Error.Code
		c.h.judge("stream", r, o, fmt.Sprintf("answered %d %s", o.status, o.code))
		return
	}
	c.h.stats.inc("stream 200")
	c.mu.Lock()
	c.on = r.name
	c.mu.Unlock()
	c.h.journal.add("client", "%s connected to %s (Last-Event-ID %v)", c.name, r.name, map[bool]any{true: from, false: "none"}[resume])
	body := &watched{r: resp.Body, slow: c.slow, last: time.Now()}
	go func() {
		var leave <-chan time.Time
		if lifetime > 0 {
			leave = time.After(lifetime)
		}
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-leave:
				c.h.stats.inc("clients left on their own")
				cancel()
				return
			case <-tick.C:
				if body.quiet() > silence {
					c.h.stats.inc("clients gave up on a silent stream")
					c.h.journal.add("client", "%s: %s silent for %v, leaving", c.name, r.name, silence)
					cancel()
					return
				}
			}
		}
	}()
	rd := sse.NewReader(body)
	first := true
	for {
		ev, err := rd.Next()
		if err != nil {
			return
		}
		if ev.Retry >= 0 {
			c.mu.Lock()
			c.retry = time.Duration(ev.Retry) * time.Millisecond
			c.mu.Unlock()
		}
		if ev.Name == "message" && ev.Data == "" {
			continue
		}
		if !c.apply(r, ev, resume, first) {
			return
		}
		first = false
	}
}

// apply checks one event against the versions the view holds and applies
// it; false means the view is lost and the client must start over.
func (c *client) apply(r *replica, ev sse.Event, resume, first bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ev.Name {
	case "snapshot":
		var l wire.List
		if err := json.Unmarshal([]byte(ev.Data), &l); err != nil {
			c.h.div.report("undecodable snapshot", "%s on %s: %v: %q", c.name, r.name, err, short(ev.Data, 200))
			c.has = false
			return false
		}
		if ev.ID != strconv.FormatInt(l.Version, 10) {
			c.h.div.report("event id differs from its version", "%s on %s: snapshot id %q, version %d", c.name, r.name, ev.ID, l.Version)
		}
		if c.has && l.Version < c.version && (resume || !first) {
			c.h.div.report("snapshot older than the view it replaces",
				"%s on %s held version %d (resumed with Last-Event-ID %v) and got a snapshot of version %d",
				c.name, r.name, c.version, resume, l.Version)
		}
		if !first {
			c.h.stats.inc("clients resynced by a snapshot mid-stream")
		}
		c.h.stats.inc("clients snapshots")
		c.has, c.version, c.limit, c.view = true, l.Version, l.Limit, l.Topics
		if l.Limit <= 0 {
			c.h.div.report("snapshot without its limit", "%s on %s: snapshot of version %d has limit %d", c.name, r.name, l.Version, l.Limit)
			c.limit = windowLimit
		}
		c.h.chk.observe(observation{who: c.name, replica: r.name, version: l.Version, topics: clone(l.Topics), limit: c.limit, via: "snapshot"})
		return true
	case "topic.created", "topic.updated", "topic.deleted":
		var e wire.Event
		if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
			c.h.div.report("undecodable event", "%s on %s: %s: %v: %q", c.name, r.name, ev.Name, err, short(ev.Data, 200))
			c.has = false
			return false
		}
		if ev.ID != strconv.FormatInt(e.Version, 10) {
			c.h.div.report("event id differs from its version", "%s on %s: %s id %q, version %d", c.name, r.name, ev.Name, ev.ID, e.Version)
		}
		if !c.has {
			c.h.div.report("delta before any snapshot", "%s on %s: %s version %d on a fresh connection", c.name, r.name, ev.Name, e.Version)
			return false
		}
		if e.Version != c.version+1 {
			what := "skipped versions"
			if e.Version <= c.version {
				what = "went back or repeated"
			}
			c.h.div.report("event version not exactly one more than the view's ("+what+")",
				"%s on %s: view at version %d (resumed: %v, first frame: %v) got %s of version %d: %s",
				c.name, r.name, c.version, resume, first, ev.Name, e.Version, short(ev.Data, 300))
			c.has = false // start over with a fresh snapshot
			return false
		}
		c.view = wire.ApplyEvent(c.view, ev.Name, e, c.limit)
		c.version = e.Version
		c.h.stats.inc("clients events applied")
		c.h.chk.observe(observation{who: c.name, replica: r.name, version: e.Version, topics: clone(c.view), limit: c.limit,
			via: ev.Name, event: short(ev.Data, 300)})
		return true
	default:
		c.h.stats.inc("clients unknown events " + ev.Name)
		return true
	}
}

func clone(ts []wire.Topic) []wire.Topic { return append([]wire.Topic{}, ts...) }

// watched is a stream body that remembers when a byte last came, and for
// a slow client reads little at a time with pauses.
type watched struct {
	r    io.Reader
	slow bool
	mu   sync.Mutex
	last time.Time
}

func (w *watched) Read(p []byte) (int, error) {
	if w.slow {
		time.Sleep(25 * time.Millisecond)
		p = p[:min(len(p), 1024)]
	}
	n, err := w.r.Read(p)
	if n > 0 {
		w.mu.Lock()
		w.last = time.Now()
		w.mu.Unlock()
	}
	return n, err
}

func (w *watched) quiet() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Since(w.last)
}
