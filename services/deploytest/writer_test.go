package deploytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/wire"
)

// send makes one JSON request and decodes a 2xx answer into out. Status 0
// means no answer at all.
func send(ctx context.Context, client *http.Client, method, url, token string, body, out any) (int, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 && out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode: %w", err)
		}
	}
	return resp.StatusCode, nil
}

// post creates a topic from the test goroutine and returns the status.
func post(t *testing.T, client *http.Client, base, comment string, header map[string]string) int {
	t.Helper()
	b, _ := json.Marshal(wire.CommentBody{Comment: comment})
	req, _ := http.NewRequest(http.MethodPost, "http://"+base+"/api/topics", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// ledger records what the writers and readers were told: a write is
// acknowledged by a 2xx; anything else is unacknowledged (the client would
// retry it), and through a rolling restart it is a failed request: a
// draining replica answers every request that reaches it.
type ledger struct {
	mu       sync.Mutex
	topics   map[int64]*written
	statuses map[string]int // "POST 201", "PATCH 502", "GET 200", "POST error", ...
}

// written is one created topic and what its comment may be now.
type written struct {
	comment string
	edit    string // an edit that was sent ("" if none)
	editAck bool   // and acknowledged
}

func newLedger() *ledger {
	return &ledger{topics: map[int64]*written{}, statuses: map[string]int{}}
}

func (l *ledger) note(method string, code int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := fmt.Sprintf("%s %d", method, code)
	if err != nil {
		key = method + " error"
	}
	l.statuses[key]++
}

// write creates a topic and, every fourth time, edits it with its token.
func (l *ledger) write(ctx context.Context, client *http.Client, base string, n int) {
	var created wire.Created
	comment := fmt.Sprintf("rolling %d", n)
	code, err := send(ctx, client, http.MethodPost, "http://"+base+"/api/topics", "", wire.CommentBody{Comment: comment}, &created)
	l.note("POST", code, err)
	if err != nil || code != http.StatusCreated {
		return
	}
	w := &written{comment: comment}
	l.mu.Lock()
	l.topics[created.Topic.ID] = w
	l.mu.Unlock()
	if n%4 != 0 {
		return
	}
	edit := comment + " (edited)"
	url := fmt.Sprintf("http://%s/api/topics/%d", base, created.Topic.ID)
	code, err = send(ctx, client, http.MethodPatch, url, created.Token, wire.CommentBody{Comment: edit}, nil)
	l.note("PATCH", code, err)
	l.mu.Lock()
	w.edit, w.editAck = edit, err == nil && code == http.StatusOK
	l.mu.Unlock()
}

// writeSteadily writes `rate` topics a second through base until ctx ends,
// each in its own goroutine so a slow answer does not slow the pace; it
// returns once every write has been answered.
func (l *ledger) writeSteadily(ctx context.Context, client *http.Client, base string, rate int) {
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tick.C:
			wg.Go(func() {
				// Its own deadline: a write started is seen to its end.
				wctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				l.write(wctx, client, base, n)
			})
		}
	}
}

// readSteadily reads the first page through base `rate` times a second
// until ctx ends, as the page's fallback poll does.
func (l *ledger) readSteadily(ctx context.Context, client *http.Client, base string, rate int) {
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tick.C:
			wg.Go(func() {
				rctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				var page wire.List
				code, err := send(rctx, client, http.MethodGet, "http://"+base+"/api/topics", "", nil, &page)
				l.note("GET", code, err)
			})
		}
	}
}

// failed counts the requests not answered as expected, by what they got.
func (l *ledger) failed() (int, map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, by := 0, map[string]int{}
	for key, c := range l.statuses {
		switch key {
		case "POST 201", "PATCH 200", "GET 200":
		default:
			n += c
			by[key] = c
		}
	}
	return n, by
}
