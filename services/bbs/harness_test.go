package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/sse"
	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/wire"
)

// env builds a getenv from a map, so replicas in one test process each
// get their own environment.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// replica is a whole server started through run, as main starts it.
type replica struct {
	t        *testing.T
	id       string
	URL      string // the public listener
	Internal string // the internal listener (metrics, readiness details); "" when unknown
	cancel   context.CancelFunc
	done     chan error

	logMu sync.Mutex
	logs  []string // every line the replica logged, in order
}

// logLines is what the replica has logged so far.
func (r *replica) logLines() []string {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	return append([]string(nil), r.logs...)
}

// cluster is the shared configuration of a test's replicas: one Postgres
// database, one Redis prefix.
type cluster struct {
	t    *testing.T
	base map[string]string
}

// newCluster migrates a throwaway database and returns a cluster on it and
// the shared Redis (redisURL "" means the shared test Redis).
func newCluster(t *testing.T, redisURL string) *cluster {
	t.Helper()
	if redisURL == "" {
		redisURL = testenv.RedisURL(t)
	}
	base := map[string]string{
		"DATABASE_URL":   testenv.PostgresURL(t),
		"REDIS_URL":      redisURL,
		"REDIS_PREFIX":   testenv.RedisPrefix(t, redisURL),
		"HTTP_ADDR":      "127.0.0.1:0",
		"INTERNAL_ADDR":  "127.0.0.1:0",
		"ADMIN_TOKEN":    "admin-secret",
		"SHUTDOWN_GRACE": "5s",
		"DRAIN_JITTER":   "200ms",
		// Stopping a replica need not wait for a load balancer; the drain
		// tests set their own.
		"DRAIN_DELAY": "0s",
		// Tests write far faster than a person; the limiter has its own tests.
		"WRITE_RATE":  "100000",
		"WRITE_BURST": "100000",
		// Tests open many streams from one address, one after the other;
		// the stream limiter has its own tests (TestStreamRate*).
		"STREAM_RATE": "0",
	}
	if err := run(context.Background(), []string{"migrate"}, env(base), io.Discard); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return &cluster{t: t, base: base}
}

// start runs one more replica with the cluster's settings plus extra.
func (c *cluster) start(id string, extra map[string]string) *replica {
	m := maps.Clone(c.base)
	maps.Copy(m, extra)
	return startReplica(c.t, id, m)
}

// startReplica runs the server in-process with the settings m and waits
// until it is ready. It sets what m leaves out of REPLICA_ID (id),
// LOG_LEVEL (info, for the "listening" line) and the listeners' addresses
// (free ports: the defaults :8080 and :9090 would be shared by every
// replica).
func startReplica(t *testing.T, id string, m map[string]string) *replica {
	t.Helper()
	m = maps.Clone(m)
	for k, v := range map[string]string{"REPLICA_ID": id, "LOG_LEVEL": "info", "HTTP_ADDR": "127.0.0.1:0", "INTERNAL_ADDR": "127.0.0.1:0"} {
		if m[k] == "" {
			m[k] = v
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{t: t, id: id, cancel: cancel, done: make(chan error, 1)}
	pr, pw := io.Pipe()
	addr := make(chan [2]string, 1)
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		// The replica logs JSON; "listening" carries the bound addresses.
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			r.logMu.Lock()
			r.logs = append(r.logs, sc.Text())
			r.logMu.Unlock()
			var line struct {
				Msg, Addr, Level string
				Internal         string `json:"internal_addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- [2]string{line.Addr, line.Internal}
			}
			if testing.Verbose() || strings.Contains(sc.Text(), `"level":"ERROR"`) {
				t.Logf("%s: %s", id, sc.Text())
			}
		}
	}()
	go func() {
		err := run(ctx, nil, env(m), pw)
		pw.Close()
		<-logged // no t.Logf may happen after the test ends
		r.done <- err
	}()
	select {
	case a := <-addr:
		r.URL = "http://" + a[0]
		if a[1] != "" && a[1] != "off" {
			r.Internal = "http://" + a[1]
		}
	case err := <-r.done:
		t.Fatalf("replica %s exited at start: %v", id, err)
	case <-time.After(15 * time.Second):
		t.Fatalf("replica %s did not start listening", id)
	}
	t.Cleanup(r.stop)
	// Before the replica stops, drop the idle connections of the tests'
	// client: http.Server.Shutdown waits up to SHUTDOWN_GRACE for
	// connections that never carried a request.
	t.Cleanup(testenv.CloseIdleConnections)
	r.waitReady()
	return r
}

func (r *replica) waitReady() {
	r.t.Helper()
	testenv.Eventually(r.t, 15*time.Second, func() error {
		if a := testenv.Send(testenv.Request{Method: "GET", URL: r.URL + "/readyz"}); a.Status != http.StatusOK {
			return fmt.Errorf("replica %s not ready: %v", r.id, a)
		}
		return nil
	})
}

// stop sends the equivalent of SIGTERM and waits for a clean exit.
func (r *replica) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("replica %s: %v", r.id, err)
		}
	case <-time.After(30 * time.Second):
		r.t.Errorf("replica %s did not stop", r.id)
	}
}

func (r *replica) create(t testing.TB, comment string) wire.Created {
	t.Helper()
	var out wire.Created
	a := testenv.Send(testenv.Request{Method: "POST", URL: r.URL + "/api/topics", JSON: wire.CommentBody{Comment: comment}})
	if a.Status != http.StatusCreated || a.Decode(&out) != nil {
		t.Fatalf("create on %s: %v", r.id, a)
	}
	return out
}

func (r *replica) list(t testing.TB) wire.List {
	t.Helper()
	var out wire.List
	if a := testenv.Send(testenv.Request{Method: "GET", URL: r.URL + "/api/topics"}); a.Status != http.StatusOK || a.Decode(&out) != nil {
		t.Fatalf("list on %s: %v", r.id, a)
	}
	out.Limit = 0
	return out
}

// waitServes waits until r's list is at version v or later.
func (r *replica) waitServes(t testing.TB, v int64, within time.Duration) {
	t.Helper()
	testenv.Eventually(t, within, func() error {
		if got := r.list(t).Version; got < v {
			return fmt.Errorf("%s serves version %d, want %d", r.id, got, v)
		}
		return nil
	})
}

// view is an SSE client that applies the stream as a browser page does and
// checks the contract as it goes: versions only ever go up by exactly one
// between deltas, and a snapshot is never older than what it replaces.
type view struct {
	t    testing.TB
	name string

	mu        sync.Mutex
	version   int64
	topics    []wire.Topic
	limit     int
	lastID    string
	versions  []int64 // every version seen, in order
	retrySeen []int64 // every retry: value, in order
	problems  []string
	changed   chan struct{}
	cancel    context.CancelFunc
	ended     chan struct{}
}

// watch opens a stream on url (with Last-Event-ID lastID when not "").
func watch(t testing.TB, name, url, lastID string) *view {
	t.Helper()
	v := &view{t: t, name: name, changed: make(chan struct{}, 1), ended: make(chan struct{})}
	v.connect(url, lastID)
	t.Cleanup(v.close)
	return v
}

// resumeAt opens a stream as a client that holds had does: its state is
// set before the stream starts, so nothing the stream sends is lost to it.
func resumeAt(t *testing.T, name, url string, had wire.List) *view {
	t.Helper()
	v := &view{t: t, name: name, changed: make(chan struct{}, 1), ended: make(chan struct{}),
		version: had.Version, topics: had.Topics, limit: had.Limit}
	v.connect(url, strconv.FormatInt(had.Version, 10))
	t.Cleanup(v.close)
	return v
}

func (v *view) connect(url, lastID string) {
	v.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/topics/stream", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		v.t.Fatalf("%s: stream: %v", v.name, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		v.t.Fatalf("%s: stream answered %d %q", v.name, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// The head the stream writes itself, once it took the connection over.
	h := resp.Header
	if h.Get("Cache-Control") != "no-cache" || h.Get("X-Accel-Buffering") != "no" || h.Get("X-Replica") == "" || !resp.Close {
		cancel()
		v.t.Fatalf("%s: stream head %v (close %v), want no-cache, X-Accel-Buffering: no, X-Replica, Connection: close", v.name, h, resp.Close)
	}
	v.mu.Lock()
	v.cancel = cancel
	v.ended = make(chan struct{})
	ended := v.ended
	v.mu.Unlock()
	go func() {
		defer close(ended)
		defer resp.Body.Close()
		rd := sse.NewReader(resp.Body)
		for {
			ev, err := rd.Next()
			if err != nil {
				return
			}
			if ev.Retry >= 0 {
				v.mu.Lock()
				v.retrySeen = append(v.retrySeen, ev.Retry)
				v.mu.Unlock()
			}
			v.apply(ev.Name, ev.Data, rd.LastID())
		}
	}()
}

func (v *view) apply(name, data, id string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	defer func() {
		select {
		case v.changed <- struct{}{}:
		default:
		}
	}()
	v.lastID = id
	switch name {
	case "snapshot":
		var l wire.List
		if err := json.Unmarshal([]byte(data), &l); err != nil {
			v.problems = append(v.problems, "bad snapshot: "+err.Error())
			return
		}
		if l.Version < v.version {
			v.problems = append(v.problems, fmt.Sprintf("snapshot at %d replaced newer %d", l.Version, v.version))
		}
		v.version, v.topics, v.limit = l.Version, l.Topics, l.Limit
		v.versions = append(v.versions, l.Version)
	case "topic.created", "topic.updated", "topic.deleted":
		var e wire.Event
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			v.problems = append(v.problems, "bad event: "+err.Error())
			return
		}
		if e.Version != v.version+1 {
			v.problems = append(v.problems, fmt.Sprintf("%s at %d after %d: missing or out of order", name, e.Version, v.version))
		}
		v.version = e.Version
		v.versions = append(v.versions, e.Version)
		v.topics = wire.ApplyEvent(v.topics, name, e, v.limit)
	case "message":
		// retry-only frames
	default:
		v.problems = append(v.problems, "unknown event "+name)
	}
}

// state returns what the client shows, in the shape of GET /api/topics.
// seen is the versions the view has applied, in order.
func (v *view) seen() []int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]int64(nil), v.versions...)
}

func (v *view) state() wire.List {
	v.mu.Lock()
	defer v.mu.Unlock()
	return wire.List{Version: v.version, Topics: append([]wire.Topic{}, v.topics...)}
}

// waitVersion waits until the client is at version at least want.
func (v *view) waitVersion(want int64, within time.Duration) {
	v.t.Helper()
	deadline := time.After(within)
	for {
		v.mu.Lock()
		have := v.version
		v.mu.Unlock()
		if have >= want {
			return
		}
		select {
		case <-v.changed:
		case <-deadline:
			v.t.Fatalf("%s: at version %d after %v, want %d", v.name, have, within, want)
		}
	}
}

func (v *view) check() {
	v.t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, p := range v.problems {
		v.t.Errorf("%s: %s", v.name, p)
	}
}

func (v *view) close() {
	v.mu.Lock()
	cancel, ended := v.cancel, v.ended
	v.mu.Unlock()
	if cancel != nil {
		cancel()
		<-ended
	}
}

// sameList fails unless two lists are equal, topic for topic.
func sameList(t testing.TB, what string, got, want wire.List) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Errorf("%s:\n got  %s\n want %s\n first difference: %s", what, g, w, firstDifference(got, want))
	}
}

// firstDifference names where two lists part, for a failure message.
func firstDifference(got, want wire.List) string {
	if got.Version != want.Version {
		return fmt.Sprintf("version %d, want %d", got.Version, want.Version)
	}
	for i := range min(len(got.Topics), len(want.Topics)) {
		if got.Topics[i] != want.Topics[i] {
			return fmt.Sprintf("topic %d: %+v, want %+v", i, got.Topics[i], want.Topics[i])
		}
	}
	return fmt.Sprintf("%d topics, want %d", len(got.Topics), len(want.Topics))
}
