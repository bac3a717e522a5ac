package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/wire"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads the replica's /metrics and parses it as Prometheus does.
func (r *replica) scrape(t testing.TB) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(r.Internal + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s: /metrics does not parse: %v", r.id, err)
	}
	return families
}

// series finds the series of a family whose labels include want; nil if
// there is none.
func series(families map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	f := families[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

// histCount is the observation count of a histogram series (0 if absent).
func histCount(families map[string]*dto.MetricFamily, name string, labels map[string]string) uint64 {
	if m := series(families, name, labels); m != nil {
		return m.GetHistogram().GetSampleCount()
	}
	return 0
}

// value is a counter's or gauge's value (-1 if absent).
func value(families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	m := series(families, name, labels)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	return -1
}

// waitMetric waits until cond holds of a fresh scrape.
func (r *replica) waitMetric(t *testing.T, what string, cond func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
	t.Helper()
	var f map[string]*dto.MetricFamily
	testenv.Eventually(t, 10*time.Second, func() error {
		if f = r.scrape(t); !cond(f) {
			return fmt.Errorf("%s: %s", r.id, what)
		}
		return nil
	})
	return f
}

// TestMetricsAfterKnownWorkload: after N posts on one replica, M streams on
// another and a few refused requests, each histogram holds exactly the
// observations that workload makes, under the route template (never the
// raw path), with streams kept out of the request histogram and timed
// when they end, and the delivery lag observed once per change on both
// the writing replica and the one that learned it from the bus.
func TestMetricsAfterKnownWorkload(t *testing.T) {
	const posts, streams = 5, 3
	c := newCluster(t, "")
	// The reader learns every change from the bus alone: a version check
	// racing a notice could bring a change from the change log first,
	// unstamped and so not observed. The writer checks often, to show the
	// database head it saw.
	writer := c.start("m1", map[string]string{"VERSION_CHECK": "250ms"})
	reader := c.start("m2", map[string]string{"VERSION_CHECK": "1h"})

	views := make([]*view, streams)
	for i := range views {
		views[i] = watch(t, fmt.Sprintf("v%d", i), reader.URL, "")
	}
	for i := range posts {
		writer.create(t, fmt.Sprintf("post %d", i))
	}
	for _, v := range views {
		v.waitVersion(posts, 10*time.Second)
	}
	// Refused requests: a bad limit, an edit without a token, a path no
	// route has (with a made-up segment, which must not become a label).
	if a := testenv.Send(testenv.Request{Method: "GET", URL: writer.URL + "/api/topics?limit=abc"}); a.Status != http.StatusBadRequest {
		t.Fatalf("bad limit: %v, want 400", a)
	}
	if a := testenv.Send(testenv.Request{Method: "PATCH", URL: writer.URL + "/api/topics/1", JSON: wire.CommentBody{Comment: "x"}}); a.Status != http.StatusUnauthorized {
		t.Fatalf("edit without token: %v, want 401", a)
	}
	if a := testenv.Send(testenv.Request{Method: "GET", URL: writer.URL + "/no/such/path-8f3a"}); a.Status != http.StatusNotFound {
		t.Fatalf("unknown path: %v, want 404", a)
	}

	hist := "bbs_http_request_duration_seconds"
	w := writer.waitMetric(t, "publish timed for every post, database head seen", func(f map[string]*dto.MetricFamily) bool {
		return histCount(f, "bbs_redis_command_duration_seconds", map[string]string{"command": "publish", "result": "ok"}) >= posts &&
			value(f, "bbs_database_version", nil) == posts
	})
	if got := value(w, "bbs_version_behind", nil); got != 0 {
		t.Errorf("writer: bbs_version_behind = %v, want 0", got)
	}
	for _, tc := range []struct {
		labels map[string]string
		want   uint64
	}{
		{map[string]string{"route": "/api/topics", "method": "POST", "class": "2xx"}, posts},
		{map[string]string{"route": "/api/topics", "method": "GET", "class": "4xx"}, 1},
		{map[string]string{"route": "/api/topics/:id", "method": "PATCH", "class": "4xx"}, 1},
		{map[string]string{"route": "unmatched", "method": "GET", "class": "4xx"}, 1},
		// (/readyz answers 503 while the replica starts: not a write's 5xx.)
		{map[string]string{"route": "/api/topics", "class": "5xx"}, 0},
	} {
		if got := histCount(w, hist, tc.labels); got != tc.want {
			t.Errorf("writer: %s%v count = %d, want %d", hist, tc.labels, got, tc.want)
		}
	}
	for _, m := range w[hist].GetMetric() {
		for _, l := range m.GetLabel() {
			if strings.Contains(l.GetValue(), "8f3a") || strings.Contains(l.GetValue(), "/api/topics/1") {
				t.Errorf("writer: a raw path became a label value: %v", m.GetLabel())
			}
		}
	}
	if got := histCount(w, "bbs_delivery_lag_seconds", map[string]string{"origin": "local"}); got != posts {
		t.Errorf("writer: bbs_delivery_lag_seconds{origin=local} count = %d, want %d (one per own write)", got, posts)
	}
	if got := histCount(w, "bbs_delivery_lag_seconds", map[string]string{"origin": "bus"}); got != 0 {
		t.Errorf("writer: bbs_delivery_lag_seconds{origin=bus} count = %d, want 0 (its own notices come back and are dropped)", got)
	}
	if got := histCount(w, "bbs_db_write_duration_seconds", map[string]string{"operation": "create", "result": "ok"}); got != posts {
		t.Errorf("writer: bbs_db_write_duration_seconds{operation=create, result=ok} count = %d, want %d", got, posts)
	}
	if got := histCount(w, "bbs_db_write_duration_seconds", map[string]string{"operation": "update"}); got != 0 {
		t.Errorf("writer: %d updates timed, want 0: an edit without a token never reaches the database", got)
	}
	if got := histCount(w, "bbs_db_query_duration_seconds", map[string]string{"operation": "create", "result": "ok"}); got < posts {
		t.Errorf("writer: bbs_db_query_duration_seconds{operation=create} count = %d, want >= %d", got, posts)
	}
	for _, m := range w["bbs_redis_command_duration_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "result" && l.GetValue() == "error" && m.GetHistogram().GetSampleCount() > 0 {
				t.Errorf("writer: Redis errors with Redis up: %v count %d (an alert would take them for an outage)", m.GetLabel(), m.GetHistogram().GetSampleCount())
			}
		}
	}
	if got := value(w, "bbs_build_info", map[string]string{"version": version, "goversion": runtime.Version()}); got != 1 {
		t.Errorf("writer: bbs_build_info{version=%q, goversion=%q} = %v, want 1", version, runtime.Version(), got)
	}
	if got := value(w, "bbs_snapshot_loads_total", map[string]string{"reason": "start"}); got != 1 {
		t.Errorf("writer: bbs_snapshot_loads_total{reason=start} = %v, want 1", got)
	}
	if got := value(w, "bbs_ready", nil); got != 1 {
		t.Errorf("writer: bbs_ready = %v, want 1", got)
	}

	// The reader: the lag of every change it got from the bus, its streams
	// open and not in the request histogram.
	r := reader.waitMetric(t, "lag observed for every notice", func(f map[string]*dto.MetricFamily) bool {
		return histCount(f, "bbs_delivery_lag_seconds", map[string]string{"origin": "bus"}) >= posts
	})
	if got := histCount(r, "bbs_delivery_lag_seconds", map[string]string{"origin": "bus"}); got != posts {
		t.Errorf("reader: bbs_delivery_lag_seconds{origin=bus} count = %d, want %d (one per notice)", got, posts)
	}
	if got := histCount(r, "bbs_delivery_lag_seconds", map[string]string{"origin": "local"}); got != 0 {
		t.Errorf("reader: bbs_delivery_lag_seconds{origin=local} count = %d, want 0: it wrote nothing", got)
	}
	if got := value(r, "bbs_streams_open", nil); got != streams {
		t.Errorf("reader: bbs_streams_open = %v, want %d", got, streams)
	}
	if got := histCount(r, hist, map[string]string{"route": "/api/topics/stream"}); got != 0 {
		t.Errorf("reader: %d accepted streams in %s, want none there", got, hist)
	}
	if got := value(r, "bbs_http_requests_total", map[string]string{"route": "/api/topics/stream", "code": "200"}); got != streams {
		t.Errorf("reader: bbs_http_requests_total{stream, 200} = %v, want %d", got, streams)
	}
	if got := histCount(r, "bbs_stream_duration_seconds", nil); got != 0 {
		t.Errorf("reader: bbs_stream_duration_seconds count = %d with every stream open, want 0", got)
	}
	for _, v := range views {
		v.close()
	}
	reader.waitMetric(t, "every stream timed once it ended", func(f map[string]*dto.MetricFamily) bool {
		return histCount(f, "bbs_stream_duration_seconds", nil) == streams && value(f, "bbs_streams_open", nil) == 0
	})
}

// TestAccessLog: one JSON line per request with the method, the route
// template, the status, the time it took, the client and the request id; a
// well-formed X-Request-ID is used and sent back, anything else replaced;
// an accepted stream is logged once, when it ends, never per heartbeat;
// probes are left to debug; and no token (neither the one a create
// returns nor the one an edit sends) and no query string ever reaches the
// log.
func TestAccessLog(t *testing.T) {
	c := newCluster(t, "")
	r := c.start("log1", map[string]string{"SSE_HEARTBEAT": "50ms"})

	send := func(method, path, token, reqID string, body any) testenv.Answer {
		t.Helper()
		rq := testenv.Request{Method: method, URL: r.URL + path, Token: token, JSON: body}
		if reqID != "" {
			rq.Header = map[string]string{"X-Request-ID": reqID}
		}
		a := testenv.Send(rq)
		if a.Err != nil {
			t.Fatal(a.Err)
		}
		return a
	}

	a := send("POST", "/api/topics", "", "trace-1.a_B", wire.CommentBody{Comment: "logged"})
	var created wire.Created
	if err := a.Decode(&created); err != nil || a.Status != http.StatusCreated {
		t.Fatalf("create: %v", a)
	}
	if got := a.Header.Get("X-Request-ID"); got != "trace-1.a_B" {
		t.Errorf("X-Request-ID answered %q, want the one sent", got)
	}
	id := fmt.Sprint(created.Topic.ID)
	a = send("PATCH", "/api/topics/"+id, created.Token, "", wire.CommentBody{Comment: "edited"})
	if a.Status != http.StatusOK {
		t.Fatalf("edit: %v", a)
	}
	generated := a.Header.Get("X-Request-ID")
	if !validHex(generated, 32) {
		t.Errorf("no X-Request-ID sent: answered %q, want 32 hex digits", generated)
	}
	for _, bad := range []string{strings.Repeat("a", 65), "has space", `quote"d`, "semi;colon"} {
		a = send("GET", "/api/topics?limit=1&secret=sekrit-q", "", bad, nil)
		if got := a.Header.Get("X-Request-ID"); got == bad || !validHex(got, 32) {
			t.Errorf("X-Request-ID %q answered %q, want a fresh id", bad, got)
		}
	}
	a = send("DELETE", "/api/topics/"+id, "wrong-token-zzz", "", nil)
	if a.Status != http.StatusForbidden {
		t.Fatalf("delete with a wrong token: %v, want 403", a)
	}

	// A stream: its heartbeats come every 50 ms; it is logged once, at its end.
	req, _ := http.NewRequest("GET", r.URL+"/api/topics/stream", nil)
	req.Header.Set("X-Request-ID", "stream-7")
	sresp, err := http.DefaultClient.Do(req)
	if err != nil || sresp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %v %v", sresp, err)
	}
	time.Sleep(300 * time.Millisecond) // several heartbeats
	sresp.Body.Close()

	type line struct {
		Msg        string  `json:"msg"`
		Method     string  `json:"method"`
		Route      string  `json:"route"`
		Path       string  `json:"path"`
		Status     int     `json:"status"`
		DurationMS float64 `json:"duration_ms"`
		Client     string  `json:"client"`
		RequestID  string  `json:"request_id"`
	}
	// The stream's line comes once the replica has seen it go.
	testenv.Eventually(t, 5*time.Second, func() error {
		if !slices.ContainsFunc(r.logLines(), func(raw string) bool { return strings.Contains(raw, `"msg":"stream ended"`) }) {
			return errors.New(`no "stream ended" line in the log`)
		}
		return nil
	})
	var lines, streamEnded []line
	for _, raw := range r.logLines() {
		for _, secret := range []string{created.Token, "wrong-token-zzz", "sekrit-q", "admin-secret"} {
			if strings.Contains(raw, secret) {
				t.Errorf("log line holds a secret %q: %s", secret, raw)
			}
		}
		var l line
		if json.Unmarshal([]byte(raw), &l) != nil {
			continue
		}
		switch l.Msg {
		case "request":
			lines = append(lines, l)
		case "stream ended":
			streamEnded = append(streamEnded, l)
		}
	}
	find := func(reqID string) *line {
		for i := range lines {
			if lines[i].RequestID == reqID {
				return &lines[i]
			}
		}
		return nil
	}
	if l := find("trace-1.a_B"); l == nil {
		t.Errorf("no access log line with the request id sent")
	} else if l.Method != "POST" || l.Route != "/api/topics" || l.Status != 201 || l.Client != "127.0.0.1" || l.DurationMS <= 0 {
		t.Errorf("create logged as %+v", *l)
	}
	if l := find(generated); l == nil || l.Route != "/api/topics/:id" || l.Path != "/api/topics/"+id || l.Status != 200 {
		t.Errorf("edit logged as %+v, want route /api/topics/:id, path /api/topics/%s, 200", l, id)
	}
	forbidden := 0
	for _, l := range lines {
		if l.Method == "DELETE" && l.Status == http.StatusForbidden {
			forbidden++
		}
		if l.Route == "/api/topics/stream" {
			t.Errorf("accepted stream logged as a request: %+v", l)
		}
		if l.Route == "/readyz" || l.Route == "/healthz" {
			t.Errorf("a probe logged at info: %+v", l)
		}
		if strings.Contains(l.Path, "?") {
			t.Errorf("query string logged: %+v", l)
		}
	}
	if forbidden != 1 {
		t.Errorf("%d lines for the refused delete, want 1", forbidden)
	}
	if len(streamEnded) != 1 || streamEnded[0].RequestID != "stream-7" || streamEnded[0].Route != "/api/topics/stream" || streamEnded[0].DurationMS < 250 {
		t.Errorf("stream logged as %+v, want exactly one line, request id stream-7, lasting >= 250 ms", streamEnded)
	}
}

func validHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}
