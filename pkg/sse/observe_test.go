package sse_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/sse"
	"github.com/bbsboard/bbs/pkg/testenv"
)

// TestBroadcastThenRunsOnceAfterEveryStream: the callback the feed times
// delivery with runs exactly once per frame, and only once every stream
// has been handed it (its client can read it by then).
func TestBroadcastThenRunsOnceAfterEveryStream(t *testing.T) {
	h := sse.NewHub(8)
	var readers []*sse.Reader
	for range 3 {
		_, _, r := attached(t, h, sse.StreamOptions{}, 0)
		readers = append(readers, r)
	}
	var calls atomic.Int32
	done := make(chan struct{})
	h.BroadcastThen(event(1), func() {
		if calls.Add(1) == 1 {
			close(done)
		}
	})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("BroadcastThen's callback never ran")
	}
	for _, r := range readers {
		if ev := next(t, r); ev.ID != "1" {
			t.Fatalf("got event %s, want 1", ev.ID)
		}
	}
	h.Broadcast(event(2)) // a plain broadcast calls nothing
	for _, r := range readers {
		next(t, r)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("callback ran %d times, want 1", n)
	}
}

// TestBehindCountsStalledStreams: a stream whose client stops reading is
// counted as behind while its own writer waits on it, and no longer once
// it is cut off; a healthy one never stays counted.
func TestBehindCountsStalledStreams(t *testing.T) {
	h := sse.NewHub(64)
	_, _, healthy := attached(t, h, sse.StreamOptions{}, 0)
	stalled(t, h, sse.StreamOptions{WriteTimeout: 2 * time.Second}) // long enough to be seen behind
	for v := int64(1); v <= 8; v++ {
		h.Broadcast(big(v))
	}
	for range 8 {
		next(t, healthy)
	}
	testenv.Eventually(t, 10*time.Second, func() error { return want("the stalled stream counted behind", h.Behind() == 1) })
	testenv.Eventually(t, 10*time.Second, func() error {
		return want("the stalled stream cut off and no longer counted", h.Behind() == 0 && h.Len() == 1)
	})
}
