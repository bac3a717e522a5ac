package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestCrossSiteWritesRefused: a form on another site that posts to the
// board (spending its visitor's write budget, writing in their name) is
// refused 403 with nothing written; the board's own form, posted without
// script, and programs that send no browser headers still write. Before,
// every form post was accepted whatever page sent it.
func TestCrossSiteWritesRefused(t *testing.T) {
	c := newCluster(t, "")
	r := c.start("r1", nil)
	host := strings.TrimPrefix(r.URL, "http://")
	post := func(headers map[string]string, form bool) int {
		body := `{"comment":"hello"}`
		ctype := "application/json"
		if form {
			body, ctype = url.Values{"comment": {"hello"}}.Encode(), "application/x-www-form-urlencoded"
		}
		req, _ := http.NewRequest("POST", r.URL+"/api/topics", strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	before := databaseList(t, r).Version
	for _, tc := range []struct {
		name    string
		headers map[string]string
		form    bool
		want    int
	}{
		{"form from another site", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, true, http.StatusForbidden},
		{"form from a sibling site", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://other." + host}, true, http.StatusForbidden},
		{"form from another origin, older browser", map[string]string{"Origin": "https://evil.example"}, true, http.StatusForbidden},
		{"form from a sandboxed frame", map[string]string{"Origin": "null"}, true, http.StatusForbidden},
		{"JSON from another site", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, false, http.StatusForbidden},
	} {
		if got := post(tc.headers, tc.form); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if v := databaseList(t, r).Version; v != before {
		t.Fatalf("refused writes moved the version %d -> %d", before, v)
	}
	for _, tc := range []struct {
		name    string
		headers map[string]string
		form    bool
		want    int
	}{
		{"the board's own form", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": r.URL}, true, http.StatusSeeOther},
		{"the board's own form, older browser", map[string]string{"Origin": r.URL}, true, http.StatusSeeOther},
		{"a program", nil, false, http.StatusCreated},
	} {
		if got := post(tc.headers, tc.form); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
