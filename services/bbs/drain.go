package main

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// connTracker follows the server's connections (http.Server.ConnState), so
// that a drain calls http.Server.Shutdown only once no connection waits
// for its request or is serving one.
//
// Shutdown closes a connection whose request it reads after it began
// without answering it (net/http returns from the connection as soon as
// it sees the shutdown), so a connection accepted just before the listener
// stopped, whose request was still on its way, would get no answer. The
// connections that are answered after the listener stopped each close
// after their answer (Connection: close), so the wait is for the requests
// in flight only.
type connTracker struct {
	mu    sync.Mutex
	state map[net.Conn]http.ConnState
}

func newConnTracker() *connTracker {
	return &connTracker{state: map[net.Conn]http.ConnState{}}
}

// hook is the http.Server's ConnState.
func (t *connTracker) hook(c net.Conn, s http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch s {
	case http.StateClosed, http.StateHijacked: // a stream: the hub's now
		delete(t.state, c)
	default:
		t.state[c] = s
	}
}

// busy counts the connections accepted and not answered: waiting for a
// request (new) or serving one (active).
func (t *connTracker) busy() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, s := range t.state {
		if s == http.StateNew || s == http.StateActive {
			n++
		}
	}
	return n
}

// waitAnswered returns once no connection is busy, or when ctx ends. A
// connection that never sends its request is closed by the server's
// ReadHeaderTimeout.
func (t *connTracker) waitAnswered(ctx context.Context) error {
	for t.busy() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}
