package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/wire"
)

// These tests throw malformed, oversized and unauthorised requests at a
// real replica (Postgres + Redis behind it) and hold it to docs/ARCHITECTURE.md's
// "bad input" row: a 4xx with a clear JSON error, never a 5xx or a panic,
// and nothing half-written in the database. The table is in
// input_cases_test.go, one function per verb.

// checkCommon holds every answer to what docs/ARCHITECTURE.md promises of all of
// them: never a 5xx on bad input, and X-Replica always present.
func checkCommon(t testing.TB, a testenv.Answer) {
	t.Helper()
	if a.Status >= 500 {
		t.Errorf("status %d (5xx on bad input): %s", a.Status, a.Body)
	}
	if a.Header.Get("X-Replica") == "" {
		t.Errorf("status %d: no X-Replica header", a.Status)
	}
}

// checkAPIError fails unless a is the standard error body with this status
// and code and a message a person can read.
func checkAPIError(t testing.TB, a testenv.Answer, status int, code string) {
	t.Helper()
	checkCommon(t, a)
	if a.Status != status {
		t.Errorf("status %d, want %d; body %s", a.Status, status, a.Body)
	}
	if ct := a.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type %q, want application/json", ct)
	}
	var e wire.Error
	if err := decodeStrict(a.Body, &e); err != nil {
		t.Errorf("error body %q does not decode as wire.Error: %v", a.Body, err)
		return
	}
	if e.Error.Code != code {
		t.Errorf("error code %q, want %q (message %q)", e.Error.Code, code, e.Error.Message)
	}
	if strings.TrimSpace(e.Error.Message) == "" {
		t.Errorf("error %q has an empty message", e.Error.Code)
	}
}

// decodeStrict decodes body into out, refusing fields out does not have.
func decodeStrict(body []byte, out any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}

// decodeAnswer decodes a success body strictly into out.
func decodeAnswer(t testing.TB, a testenv.Answer, out any) {
	t.Helper()
	if err := decodeStrict(a.Body, out); err != nil {
		t.Fatalf("status %d body %q: %v", a.Status, a.Body, err)
	}
}

// jsonBody builds {"comment": s} the way a correct client would.
func jsonBody(s string) []byte {
	b, _ := json.Marshal(wire.CommentBody{Comment: s})
	return b
}

// inputWrites is what the table's successful writes left, for the check
// that nothing else was written.
type inputWrites struct {
	n            int          // successful writes, the target's create included
	created      []wire.Topic // what the JSON creates answered
	formComments []string     // what the form posts sent
}

func TestBadInput(t *testing.T) {
	c := newCluster(t, "")
	r := c.start("r1", nil)
	// A live topic for the PATCH cases to aim bad bodies at; its comment
	// must come out of the table untouched.
	target := r.create(t, "target")
	tbl := inputTable{base: r.URL, target: topicURL(r, target.Topic.ID), token: target.Token}
	writes := &inputWrites{n: 1}
	for _, verb := range []struct {
		name  string
		cases []inputCase
	}{
		{"POST", tbl.postCases()},
		{"POST text", tbl.postTextCases()},
		{"POST size", tbl.postSizeCases()},
		{"POST form", tbl.formCases()},
		{"PATCH", tbl.patchCases()},
		{"DELETE", tbl.deleteCases()},
		{"GET", tbl.getCases()},
		{"routes", tbl.routeCases()},
	} {
		t.Run(verb.name, func(t *testing.T) {
			for _, tc := range verb.cases {
				t.Run(tc.name, func(t *testing.T) { checkInput(t, r, tc, writes, target.Topic.ID) })
			}
		})
	}
	// gin's trailing-slash redirect would answer before the middleware,
	// without X-Replica; every response must carry it.
	if a := testenv.Do(t, testenv.Request{Method: "GET", URL: tbl.topics() + "/"}); a.Header.Get("X-Replica") == "" || a.Status != 404 {
		t.Errorf("GET /api/topics/ answered %d, X-Replica %q; want 404 with X-Replica", a.Status, a.Header.Get("X-Replica"))
	}
	checkNothingHalfWritten(t, r, target, writes)
}

// checkInput sends one case and holds the answer to it; the server must
// still be serving afterwards, whatever the request did.
func checkInput(t *testing.T, r *replica, tc inputCase, writes *inputWrites, targetID int64) {
	a := testenv.Do(t, tc.rq)
	switch {
	case tc.status >= 400:
		checkAPIError(t, a, tc.status, tc.code)
		if tc.status == http.StatusMethodNotAllowed && a.Header.Get("Allow") == "" {
			t.Errorf("405 without an Allow header")
		}
	case tc.status == http.StatusCreated:
		checkStatus(t, a, tc.status)
		var out wire.Created
		decodeAnswer(t, a, &out)
		writes.n++
		writes.created = append(writes.created, out.Topic)
		if out.Token == "" || out.Topic.ID <= targetID {
			t.Errorf("created %+v with token %q", out.Topic, out.Token)
		}
		if tc.comment != nil && out.Topic.Comment != *tc.comment {
			t.Errorf("stored comment %q, want %q", out.Topic.Comment, *tc.comment)
		}
	case tc.status == http.StatusSeeOther:
		checkStatus(t, a, tc.status)
		writes.n++
		writes.formComments = append(writes.formComments, tc.formComment)
		if loc := a.Header.Get("Location"); loc != "/" {
			t.Errorf("Location %q, want /", loc)
		}
	case tc.status == http.StatusOK && tc.rq.Method == "GET":
		checkStatus(t, a, tc.status)
		var l wire.List
		decodeAnswer(t, a, &l)
		if l.Topics == nil {
			t.Errorf("topics is null, want a list")
		}
	default:
		t.Fatalf("table case with unhandled status %d", tc.status)
	}
	if h := testenv.Do(t, testenv.Request{Method: "GET", URL: r.URL + "/healthz"}); h.Status != http.StatusOK {
		t.Fatalf("after this request /healthz answers %d", h.Status)
	}
}

// checkStatus holds a success to what every answer promises and to its
// status.
func checkStatus(t *testing.T, a testenv.Answer, status int) {
	t.Helper()
	checkCommon(t, a)
	if a.Status != status {
		t.Fatalf("status %d, want %d; body %.300s", a.Status, status, a.Body)
	}
}

// checkNothingHalfWritten: the database's version moved exactly once per
// successful write (the target's create included), and the live topics
// are exactly the ones those writes created, the target unchanged.
func checkNothingHalfWritten(t *testing.T, r *replica, target wire.Created, writes *inputWrites) {
	t.Helper()
	truth := databaseList(t, r)
	if truth.Version != int64(writes.n) {
		t.Errorf("database at version %d after %d successful writes", truth.Version, writes.n)
	}
	want := map[int64]wire.Topic{target.Topic.ID: target.Topic}
	for _, tp := range writes.created {
		want[tp.ID] = tp
	}
	var others []string // comments of topics no JSON answer named: the form posts
	for _, tp := range truth.Topics {
		w, ok := want[tp.ID]
		if !ok {
			others = append(others, tp.Comment)
			continue
		}
		delete(want, tp.ID)
		if tp.Comment != w.Comment || !tp.CreatedAt.Equal(w.CreatedAt) || !tp.UpdatedAt.Equal(w.UpdatedAt) {
			t.Errorf("topic %d in the database %+v differs from its answer %+v", tp.ID, tp, w)
		}
	}
	for id := range want {
		t.Errorf("topic %d was answered as created but is not in the database", id)
	}
	formComments := slices.Sorted(slices.Values(writes.formComments))
	slices.Sort(others)
	if !slices.Equal(others, formComments) {
		t.Errorf("topics not created through JSON: %q, want the form posts' %q", others, formComments)
	}
	if len(truth.Topics) != writes.n {
		t.Errorf("%d live topics after %d creates", len(truth.Topics), writes.n)
	}
	t.Logf("%d successful writes, database at version %d with %d topics", writes.n, truth.Version, len(truth.Topics))
}
