package sse_test

import (
	"testing"

	"github.com/bbsboard/bbs/pkg/sse"
)

// TestSlowSubscriberOverflowsAlone: a subscriber that never reads fills its
// queue and is marked overflowed; the others keep getting every frame, and
// Broadcast never blocks.
func TestSlowSubscriberOverflowsAlone(t *testing.T) {
	h := sse.NewHub(4)
	slow, _ := h.Subscribe()
	fast, _ := h.Subscribe()
	for v := int64(1); v <= 10; v++ {
		h.Broadcast(sse.Encode(v, "e", nil))
		if f := <-fast.Frames(); f.Version != v {
			t.Fatalf("fast got %d, want %d", f.Version, v)
		}
	}
	select {
	case <-slow.Overflowed():
	default:
		t.Fatal("slow subscriber not marked overflowed")
	}
	select {
	case <-fast.Overflowed():
		t.Fatal("fast subscriber marked overflowed")
	default:
	}
	if len(slow.Frames()) != 4 || h.Overflows() != 1 {
		t.Fatalf("slow queue %d, overflows %d", len(slow.Frames()), h.Overflows())
	}
}

// TestHeartbeatDoesNotOverflow: a full queue skips heartbeats quietly; only
// a lost event is an overflow.
func TestHeartbeatDoesNotOverflow(t *testing.T) {
	h := sse.NewHub(1)
	s, _ := h.Subscribe()
	h.Broadcast(sse.Encode(1, "e", nil))
	h.Broadcast(sse.Comment("heartbeat"))
	select {
	case <-s.Overflowed():
		t.Fatal("heartbeat overflowed a subscriber")
	default:
	}
}

func TestCloseEndsSubscribersAndRefusesNew(t *testing.T) {
	h := sse.NewHub(1)
	s, _ := h.Subscribe()
	h.Close()
	<-s.Closing()
	if _, err := h.Subscribe(); err != sse.ErrClosed {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

// BenchmarkBroadcast: one event to n subscribers. The frame is encoded once;
// allocations per broadcast must not grow with n.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		b.Run(itoa(int64(n)), func(b *testing.B) {
			h := sse.NewHub(1 << 20 / n)
			subs := make([]*sse.Subscriber, n)
			for i := range subs {
				subs[i], _ = h.Subscribe()
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				h.Broadcast(sse.Encode(int64(i+1), "topic.created", []byte(`{"version":1,"topic":{"id":1,"comment":"hello"}}`)))
				for _, s := range subs {
					<-s.Frames()
				}
			}
		})
	}
}
