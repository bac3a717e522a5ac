package bus

import (
	"context"
	"sync"
)

// Memory is an in-process bus for a single replica.
type Memory struct {
	mu   sync.RWMutex
	next int
	subs map[int]func([]byte)
}

// NewMemory returns an empty in-process bus.
func NewMemory() *Memory { return &Memory{subs: map[int]func([]byte){}} }

// Publish hands msgs, in order, to every subscriber before it returns.
func (m *Memory) Publish(_ context.Context, msgs ...[]byte) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, msg := range msgs {
		for _, h := range m.subs {
			h(msg)
		}
	}
	return nil
}

// Subscribe delivers messages to handle until ctx ends. resubscribed is
// called once, when the subscription starts.
func (m *Memory) Subscribe(ctx context.Context, handle func([]byte), resubscribed func()) error {
	m.mu.Lock()
	id := m.next
	m.next++
	m.subs[id] = handle
	m.mu.Unlock()
	resubscribed()
	<-ctx.Done()
	m.mu.Lock()
	delete(m.subs, id)
	m.mu.Unlock()
	return nil
}
