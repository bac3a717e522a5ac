package api

import (
	"sync"
	"sync/atomic"
)

// clientStreams counts each client's open streams on this replica, so one
// address cannot take every stream a replica may hold.
type clientStreams struct {
	mu sync.Mutex
	n  map[string]int

	reserved atomic.Int64 // streams accepted or being accepted, for MaxStreams
}

// acquire counts one more stream for key, unless key already holds limit.
func (cs *clientStreams) acquire(key string, limit int) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.n[key] >= limit {
		return false
	}
	if cs.n == nil {
		cs.n = map[string]int{}
	}
	cs.n[key]++
	return true
}

// release counts one stream of key gone; a client with none is forgotten,
// so the map holds only clients with streams open.
func (cs *clientStreams) release(key string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.n[key] <= 1 {
		delete(cs.n, key)
		return
	}
	cs.n[key]--
}
