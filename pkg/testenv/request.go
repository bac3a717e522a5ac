package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// Request is one HTTP request as a test sends it.
type Request struct {
	Method string
	URL    string
	// Token is sent as a bearer token unless "".
	Token string
	// JSON, unless nil, is the body encoded as JSON, with its content type.
	JSON any
	// Body, when JSON is nil, is sent byte for byte as written, so that a
	// malformed body reaches the server unchanged; nil sends no body.
	Body []byte
	// ContentType is Body's; "" sends no Content-Type at all.
	ContentType string
	// Chunked sends Body without a Content-Length.
	Chunked bool
	// Header holds more header fields (Idempotency-Key, X-Request-ID...).
	Header map[string]string
	// Client sends it; nil is a client that bounds each request to 30 s
	// and keeps 64 idle connections per host for concurrent writers.
	// Either way redirects are not followed: the answer under test is the
	// server's own.
	Client *http.Client
}

// Answer is a response read in full, or what ended the exchange.
type Answer struct {
	Status  int
	Header  http.Header
	Body    []byte
	ErrCode string // the code of a JSON error body, {"error":{"code":...}}
	Took    time.Duration
	Err     error // no whole answer: a transport error, a timeout, a cut body
}

func (a Answer) String() string {
	if a.Err != nil {
		return fmt.Sprintf("error after %v: %v", a.Took, a.Err)
	}
	return fmt.Sprintf("%d %s after %v", a.Status, bytes.TrimSpace(a.Body), a.Took)
}

// Decode decodes a JSON answer into out.
func (a Answer) Decode(out any) error {
	if a.Err != nil {
		return a.Err
	}
	if err := json.Unmarshal(a.Body, out); err != nil {
		return fmt.Errorf("status %d body %.300q: %w", a.Status, a.Body, err)
	}
	return nil
}

// onlyReader hides bytes.Reader's Len, so net/http cannot learn the length
// up front and streams the body chunked.
type onlyReader struct{ io.Reader }

// NewRequest builds rq as an *http.Request, for a client of the caller's
// own (one that writes it on a raw connection, say).
func (rq Request) NewRequest(ctx context.Context) (*http.Request, error) {
	body, contentType := rq.Body, rq.ContentType
	if rq.JSON != nil {
		b, err := json.Marshal(rq.JSON)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s body: %w", rq.Method, rq.URL, err)
		}
		body, contentType = b, "application/json"
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
		if rq.Chunked {
			rd = onlyReader{rd}
		}
	}
	req, err := http.NewRequestWithContext(ctx, rq.Method, rq.URL, rd)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if rq.Token != "" {
		req.Header.Set("Authorization", "Bearer "+rq.Token)
	}
	for k, v := range rq.Header {
		req.Header.Set(k, v)
	}
	return req, nil
}

// client is Send's when the request names none.
var client = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64},
}

// CloseIdleConnections drops the idle connections of Send's own client.
// A test calls it before its servers stop: net/http dials spare
// connections under concurrency that may never carry a request, and
// http.Server.Shutdown waits for those before it treats them as idle.
func CloseIdleConnections() { client.CloseIdleConnections() }

// Send makes one request and reads the whole answer. It never fails the
// test, so any goroutine may call it: what went wrong is in Answer.Err.
func Send(rq Request) Answer {
	req, err := rq.NewRequest(context.Background())
	if err != nil {
		return Answer{Err: err}
	}
	c := *client
	if rq.Client != nil {
		c = *rq.Client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return Answer{Err: err, Took: time.Since(start)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	a := Answer{Status: resp.StatusCode, Header: resp.Header, Body: data, Took: time.Since(start), Err: err}
	if resp.StatusCode >= 400 {
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil {
			a.ErrCode = e.Error.Code
		}
	}
	return a
}

// Do is Send for a test's own goroutine: it fails the test when there is
// no whole answer.
func Do(t testing.TB, rq Request) Answer {
	t.Helper()
	a := Send(rq)
	if a.Err != nil {
		t.Fatalf("%s %s: %v", rq.Method, rq.URL, a.Err)
	}
	return a
}
