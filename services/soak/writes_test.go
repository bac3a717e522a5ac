package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/bbsboard/bbs/pkg/wire"
)

// write is one write request and what became of it, kept to check later
// that the change log agrees with the answer.
type write struct {
	n       int    // the [wN] marker in its comment
	op      string // create, edit-own, delete-wrong, purge-admin, ...
	rep     string
	id      int64  // target (or created) topic
	comment string // the comment stored, as the 2xx answer gave it
	marked  bool   // the comment carries [wN]
	retried bool   // sent again with the same Idempotency-Key
	verdict string // acked (2xx), refused (4xx, 503 unavailable or not_ready) or unknown
	o       outcome
	checked bool
}

// book is what the writers know: the topics they created, with tokens, and
// every write, for the checks against the log.
type book struct {
	mu     sync.Mutex
	next   int
	own    []ownTopic
	writes []*write
	delAt  map[int64]time.Time // first delete or purge sent for a topic
}

type ownTopic struct {
	id    int64
	token string
}

// acked counts the 2xx writes from index from on, and returns where the
// list ends now.
func (b *book) acked(from int) (n, end int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, w := range b.writes[from:] {
		if w.verdict == "acked" {
			n++
		}
	}
	return n, len(b.writes)
}

func (b *book) number() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	return b.next
}

// deleting notes a delete of id is being sent now.
func (b *book) deleting(id int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.delAt[id]; !ok {
		b.delAt[id] = time.Now()
	}
}

// mayBeGone reports whether a delete of id was sent before t.
func (b *book) mayBeGone(id int64, t time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	at, ok := b.delAt[id]
	return ok && at.Before(t)
}

func (b *book) pick(rng *rand.Rand) (ownTopic, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.own) == 0 {
		return ownTopic{}, false
	}
	// Mostly recent ones: they are in the window, where it matters.
	i := len(b.own) - 1 - min(len(b.own)-1, int(rng.ExpFloat64()*8))
	return b.own[i], true
}

// writer sends a random mix of writes and reads to random replicas.
type writer struct {
	h   *harness
	rng *rand.Rand
	hc  *http.Client
}

var writeOps = []struct {
	name   string
	weight int
}{
	{"create", 22}, {"create-key", 10}, {"create-bad", 5}, {"edit-own", 12}, {"edit-wrong", 4}, {"edit-none", 2}, {"edit-admin", 4},
	{"delete-own", 8}, {"delete-wrong", 3}, {"delete-none", 1}, {"delete-admin", 3},
	{"purge-admin", 3}, {"purge-own", 1}, {"read", 8}, {"read-older", 3},
}

func (w *writer) pickOp() string {
	total := 0
	for _, o := range writeOps {
		total += o.weight
	}
	n := w.rng.IntN(total)
	for _, o := range writeOps {
		if n -= o.weight; n < 0 {
			return o.name
		}
	}
	return "create"
}

// comment draws a valid comment marked [wN]: mostly short, some long and
// multi-byte, some with white space and CRLF for the server to normalise.
func comment(rng *rand.Rand, n int, what string) string {
	s := fmt.Sprintf("[w%d] %s %x", n, what, rng.Uint32())
	switch rng.IntN(10) {
	case 0:
		s += " " + strings.Repeat("掲示板", 300+rng.IntN(300))
	case 1:
		s = "  \r\n" + s + "\r\nsecond line\t \n"
	}
	return s
}

// do sends one operation to r and judges the answer.
func (w *writer) do(op string, r *replica) {
	h := w.h
	n := h.book.number()
	wr := &write{n: n, op: op, rep: r.name, marked: true}
	var (
		req      *http.Request
		expected []int
		sent     string
		target   ownTopic
		hasT     bool
	)
	base := r.url() + "/api/topics"
	target, hasT = h.book.pick(w.rng)
	if strings.HasSuffix(op, "-admin") && w.rng.IntN(2) == 0 {
		if live := h.model.liveIDs(); len(live) > 0 {
			target, hasT = ownTopic{id: live[w.rng.IntN(min(len(live), 12))]}, true
		}
	}
	if !hasT && !strings.HasPrefix(op, "create") && !strings.HasPrefix(op, "read") {
		op, wr.op = "create", "create"
	}
	if !strings.HasPrefix(op, "create") {
		wr.id = target.id
	}
	wrong := fmt.Sprintf("wrong-%x", w.rng.Uint64())
	switch op {
	case "create":
		sent = comment(w.rng, n, "created")
		req, _ = testenv.Request{Method: "POST", URL: base, JSON: wire.CommentBody{Comment: sent}}.NewRequest(context.Background())
		expected = []int{201}
	case "create-bad":
		req, expected, wr.marked = badCreate(w.rng, base, n)
	case "edit-own", "edit-wrong", "edit-none", "edit-admin":
		sent = comment(w.rng, n, "edited")
		tok := map[string]string{"edit-own": target.token, "edit-wrong": wrong, "edit-none": "", "edit-admin": adminToken}[op]
		req, _ = testenv.Request{Method: "PATCH", URL: fmt.Sprintf("%s/%d", base, target.id), Token: tok, JSON: wire.CommentBody{Comment: sent}}.NewRequest(context.Background())
		expected = map[string][]int{"edit-own": {200}, "edit-wrong": {403}, "edit-none": {401}, "edit-admin": {200}}[op]
	case "delete-own", "delete-wrong", "delete-none", "delete-admin", "purge-admin", "purge-own":
		tok := map[string]string{"delete-own": target.token, "delete-wrong": wrong, "delete-none": "", "delete-admin": adminToken,
			"purge-admin": adminToken, "purge-own": target.token}[op]
		u := fmt.Sprintf("%s/%d", base, target.id)
		if strings.HasPrefix(op, "purge") {
			u += "?purge=true"
		}
		req, _ = testenv.Request{Method: "DELETE", URL: u, Token: tok}.NewRequest(context.Background())
		expected = map[string][]int{"delete-own": {204}, "delete-wrong": {403}, "delete-none": {401}, "delete-admin": {204},
			"purge-admin": {204}, "purge-own": {403}}[op]
		wr.marked = false
		h.book.deleting(target.id)
	case "create-key":
		w.createKeyed(wr, r)
		return
	case "read", "read-older":
		w.read(op, r)
		return
	}
	var body []byte
	wr.o, body = w.send(req)
	if wr.id != 0 && h.book.mayBeGone(wr.id, wr.o.start.Add(wr.o.took)) && op != "purge-own" && op != "delete-none" {
		expected = append(expected, 404)
	}
	desc := fmt.Sprintf("w%d %s", n, op)
	if wr.id != 0 {
		desc += fmt.Sprintf(" topic %d", wr.id)
	}
	h.judgeAnd(op, r, wr.o, expected, desc)
	wr.verdict = verdictOf(wr.o)
	if wr.verdict == "acked" {
		w.acked(wr, sent, body)
	}
	h.book.mu.Lock()
	h.book.writes = append(h.book.writes, wr)
	h.book.mu.Unlock()
}

// send sends req and reads the answer and its error code.
func (w *writer) send(req *http.Request) (outcome, []byte) {
	start := time.Now()
	resp, err := w.hc.Do(req)
	o := outcome{start: start, err: err}
	var body []byte
	if err == nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		o.status = resp.StatusCode
		var e wire.Error
		if resp.StatusCode >= 400 && json.Unmarshal(body, &e) == nil {
			o.code = e.Error.Code
		}
	}
	o.took = time.Since(start)
	return o, body
}

// createKeyed posts with an Idempotency-Key and, while the outcome is
// unknown, retries with the same key on another replica, as README's
// "Retrying writes" says a client may: the topic must never be created twice.
func (w *writer) createKeyed(wr *write, r *replica) {
	h := w.h
	sent := comment(w.rng, wr.n, "keyed")
	key := fmt.Sprintf("soak-%d-%016x", wr.n, w.rng.Uint64())
	var body []byte
	for attempt := 1; ; attempt++ {
		req, _ := testenv.Request{Method: "POST", URL: r.url() + "/api/topics", JSON: wire.CommentBody{Comment: sent}}.NewRequest(context.Background())
		req.Header.Set("Idempotency-Key", key)
		wr.o, body = w.send(req)
		wr.rep = r.name
		expected := []int{201}
		if attempt > 1 {
			expected = append(expected, 410) // an admin may have deleted it meanwhile
		}
		h.judgeAnd("create-key", r, wr.o, expected, fmt.Sprintf("w%d create-key attempt %d", wr.n, attempt))
		wasUnknown := attempt > 1 && wr.verdict == "unknown"
		wr.verdict = verdictOf(wr.o)
		if wr.o.status == 410 {
			wr.verdict = "unknown" // created by an earlier attempt, deleted since
		}
		if wasUnknown && wr.verdict == "refused" {
			// This attempt wrote nothing, but an earlier one may have.
			wr.verdict = "unknown"
		}
		if wr.verdict != "unknown" || attempt == 3 {
			break
		}
		wr.retried = true
		time.Sleep(300 * time.Millisecond)
		if up := h.cl.up(); len(up) > 0 {
			r = up[w.rng.IntN(len(up))]
		}
	}
	if wr.verdict == "acked" {
		wr.op = "create"
		w.acked(wr, sent, body)
		wr.op = "create-key"
	}
	h.book.mu.Lock()
	h.book.writes = append(h.book.writes, wr)
	h.book.mu.Unlock()
}

// acked checks a 2xx answer's body and records what it says was written.
func (w *writer) acked(wr *write, sent string, body []byte) {
	h := w.h
	want, _ := topic.NormalizeComment(sent)
	switch wr.op {
	case "create":
		var c wire.Created
		if err := json.Unmarshal(body, &c); err != nil || c.Topic.ID == 0 || c.Token == "" {
			h.div.report("bad 201 body", "w%d on %s: %v: %q", wr.n, wr.rep, err, short(string(body), 200))
			return
		}
		if c.Topic.Comment != want {
			h.div.report("2xx answer carries another comment", "w%d create: sent %q, answered %q", wr.n, short(want, 60), short(c.Topic.Comment, 60))
		}
		wr.id, wr.comment = c.Topic.ID, c.Topic.Comment
		h.book.mu.Lock()
		h.book.own = append(h.book.own, ownTopic{id: c.Topic.ID, token: c.Token})
		h.book.mu.Unlock()
	case "edit-own", "edit-admin":
		var one wire.One
		if err := json.Unmarshal(body, &one); err != nil || one.Topic.ID != wr.id || one.Topic.Comment != want {
			h.div.report("2xx answer carries another comment", "w%d %s topic %d: sent %q, answered %q (%v)", wr.n, wr.op, wr.id, short(want, 60), short(string(body), 120), err)
		}
		wr.comment = want
	}
}

// verdictOf says what an answer claims about the write: acked (it is
// written), refused (nothing was written) or unknown.
func verdictOf(o outcome) string {
	switch {
	case o.err != nil || o.status == 0:
		return "unknown"
	case o.status >= 200 && o.status < 300:
		return "acked"
	case o.status >= 400 && o.status < 500:
		return "refused"
	case o.status == 503 && (o.code == "unavailable" || o.code == "not_ready" || o.code == "draining"):
		return "refused"
	}
	return "unknown"
}

// badCreate builds a create the server must refuse, and the status it
// must refuse it with. marked is false when the body cannot carry [wN].
func badCreate(rng *rand.Rand, base string, n int) (*http.Request, []int, bool) {
	mark := fmt.Sprintf("[w%d] bad", n)
	raw := func(ct, body string) *http.Request {
		req, _ := testenv.Request{Method: "POST", URL: base, ContentType: ct, Body: []byte(body)}.NewRequest(context.Background())
		return req
	}
	switch rng.IntN(6) {
	case 0:
		req, _ := testenv.Request{Method: "POST", URL: base, JSON: wire.CommentBody{Comment: mark + "\x00 control"}}.NewRequest(context.Background())
		return req, []int{422}, true
	case 1:
		req, _ := testenv.Request{Method: "POST", URL: base, JSON: wire.CommentBody{Comment: mark + strings.Repeat("長", 2001)}}.NewRequest(context.Background())
		return req, []int{422}, true
	case 2:
		req, _ := testenv.Request{Method: "POST", URL: base, JSON: wire.CommentBody{Comment: " \r\n\t "}}.NewRequest(context.Background())
		return req, []int{422}, false
	case 3:
		return raw("application/json", `{"comment":"`+mark+`","extra":1}`), []int{400}, true
	case 4:
		return raw("application/json", `{"comment":"`+mark+"\xff\xfe"+`"}`), []int{400}, true
	default:
		return raw("text/plain", `{"comment":"`+mark+`"}`), []int{415}, true
	}
}

// read fetches a page and hands it to the checker.
func (w *writer) read(op string, r *replica) {
	h := w.h
	limit, before := 1+w.rng.IntN(windowLimit), int64(0)
	q := url.Values{"limit": {fmt.Sprint(limit)}}
	if op == "read-older" {
		live := h.model.liveIDs()
		if len(live) == 0 {
			return
		}
		before = live[w.rng.IntN(len(live))] + int64(w.rng.IntN(3))
		limit = 1 + w.rng.IntN(20)
		q = url.Values{"limit": {fmt.Sprint(limit)}, "before": {fmt.Sprint(before)}}
	}
	start := time.Now()
	resp, err := w.hc.Get(r.url() + "/api/topics?" + q.Encode())
	o := outcome{start: start, err: err}
	var l wire.List
	var decodeErr error
	if err == nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		o.status = resp.StatusCode
		if o.status == 200 {
			decodeErr = json.Unmarshal(body, &l)
		} else {
			var e wire.Error
			_ = json.Unmarshal(body, &e)
			o.code = e.Error.Code
		}
	}
	o.took = time.Since(start)
	h.judgeAnd(op, r, o, []int{200}, fmt.Sprintf("GET %s", q.Encode()))
	if o.status == 200 {
		if decodeErr != nil {
			h.div.report("undecodable page", "GET on %s: %v", r.name, decodeErr)
			return
		}
		h.chk.observe(observation{who: "GET", replica: r.name, version: l.Version, topics: l.Topics, limit: limit, before: before,
			via: "page", event: "?" + q.Encode()})
	}
}

// judgeAnd counts an answer and reports it unless it was expected or a
// fault in force explains it.
func (h *harness) judgeAnd(op string, r *replica, o outcome, expected []int, desc string) {
	label := fmt.Sprint(o.status)
	if o.code != "" {
		label += " " + o.code
	}
	if o.err != nil {
		label = "no answer"
	}
	if slices.Contains(expected, o.status) && o.took <= requestBound {
		h.stats.inc("ops " + op + " " + label)
		h.journal.add("op", "%s on %s: %s in %v", desc, r.name, label, o.took.Round(time.Millisecond))
		return
	}
	if why := h.faults.explain(r.idx, o, op != "read" && op != "stream"); why != "" {
		h.stats.inc("ops " + op + " " + label + " (" + why + ")")
		h.journal.add("op", "%s on %s: %s in %v, explained by %s", desc, r.name, label, o.took.Round(time.Millisecond), why)
		return
	}
	h.stats.inc("ops " + op + " " + label + " UNEXPECTED")
	h.journal.add("op", "%s on %s: %s in %v UNEXPECTED (want %v)", desc, r.name, label, o.took.Round(time.Millisecond), expected)
	detail := fmt.Sprintf("%s on %s: %s after %v (expected %v; err %v); faults in force anywhere meanwhile: %v",
		desc, r.name, label, o.took.Round(time.Millisecond), expected, o.err, h.faults.during(o.start, o.start.Add(o.took)))
	switch {
	case o.took > requestBound:
		h.div.report("request hung past "+requestBound.String(), "%s", detail)
	case o.err != nil:
		h.div.report("request failed with no fault to explain it", "%s", detail)
	case o.status >= 500:
		h.div.report(fmt.Sprintf("%d %s with no fault to explain it", o.status, o.code), "%s", detail)
	case o.status >= 200 && o.status < 300:
		h.div.report("write accepted that must be refused ("+op+")", "%s", detail)
	default:
		h.div.report(fmt.Sprintf("unexpected %d %s (%s)", o.status, o.code, op), "%s", detail)
	}
}

// judge is judgeAnd for a stream, which must answer 200.
func (h *harness) judge(op string, r *replica, o outcome, desc string) {
	h.judgeAnd(op, r, o, []int{200}, "stream "+desc)
}
