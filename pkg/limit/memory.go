package limit

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Memory limits writes per client in this process only: right for the
// single-replica mode, wrong behind a load balancer (each replica would
// give the client a whole budget of its own).
type Memory struct {
	rate rate.Limit
	r    Rate
	now  func() time.Time

	mu        sync.Mutex
	clients   map[string]*memEntry
	lastSweep time.Time
}

type memEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewMemory returns an in-process limiter. r.PerMinute must be positive.
func NewMemory(r Rate) *Memory {
	return newMemory(r, time.Now)
}

func newMemory(r Rate, now func() time.Time) *Memory {
	r = r.normalize()
	return &Memory{
		rate:      rate.Every(r.interval()),
		r:         r,
		now:       now,
		clients:   map[string]*memEntry{},
		lastSweep: now(),
	}
}

// Allow takes one write from client's budget. When the budget is spent it
// answers false and how long until the next write would be allowed. It
// never fails; the error is there to match the Redis limiter.
func (m *Memory) Allow(_ context.Context, client string) (bool, time.Duration, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	e := m.clients[client]
	if e == nil {
		e = &memEntry{lim: rate.NewLimiter(m.rate, m.r.Burst)}
		m.clients[client] = e
	}
	e.seen = now
	res := e.lim.ReserveN(now, 1)
	if wait := res.DelayFrom(now); wait > 0 {
		// Refused: give the token back so retrying early does not push
		// the client's next allowed write further away.
		res.CancelAt(now)
		return false, wait, nil
	}
	return true, 0, nil
}

// sweep forgets clients idle for longer than a whole refill: their budget
// is full again, exactly what a new entry starts with, so nothing is lost,
// and the map holds only the clients seen in the last two refill windows.
// It runs at most once a window, so its cost is spread over the writes.
func (m *Memory) sweep(now time.Time) {
	idle := m.r.refill()
	if now.Sub(m.lastSweep) < idle {
		return
	}
	m.lastSweep = now
	for k, e := range m.clients {
		if now.Sub(e.seen) >= idle {
			delete(m.clients, k)
		}
	}
}

// Len is the number of clients remembered (for tests and metrics).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.clients)
}
