package sse_test

import (
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/sse"
)

// nullConn is a connection whose writes are real write(2) calls to
// /dev/null, so that 10,000 streams fit in a benchmark without 20,000
// sockets (the open-file limit here is 20,000). Reads block until Close.
type nullConn struct {
	raw    syscall.RawConn
	closed chan struct{}
}

func (c *nullConn) Read([]byte) (int, error)              { <-c.closed; return 0, net.ErrClosed }
func (c *nullConn) Write(p []byte) (int, error)           { return len(p), nil }
func (c *nullConn) Close() error                          { close(c.closed); return nil }
func (c *nullConn) LocalAddr() net.Addr                   { return &net.TCPAddr{} }
func (c *nullConn) RemoteAddr() net.Addr                  { return &net.TCPAddr{} }
func (c *nullConn) SetDeadline(time.Time) error           { return nil }
func (c *nullConn) SetReadDeadline(time.Time) error       { return nil }
func (c *nullConn) SetWriteDeadline(time.Time) error      { return nil }
func (c *nullConn) SyscallConn() (syscall.RawConn, error) { return c.raw, nil }

// BenchmarkBroadcast: one event to n streams, each written with its own
// system call. The frame is encoded once; allocations per broadcast must
// not grow with n.
func BenchmarkBroadcast(b *testing.B) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	raw, err := devnull.SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 1000, 10000} {
		b.Run(itoa(int64(n)), func(b *testing.B) {
			h := sse.NewHub(64)
			for range n {
				st, err := h.NewStream(&nullConn{raw: raw, closed: make(chan struct{})}, sse.StreamOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if err := h.Attach(st, 0, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			want := h.Delivered()
			for i := 0; b.Loop(); i++ {
				h.Broadcast(sse.Encode(int64(i+1), "topic.created", []byte(`{"version":1,"topic":{"id":1,"comment":"hello"}}`)))
				want += int64(n)
				for h.Delivered() < want {
					runtime.Gosched()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
			h.Close(func() sse.Frame { return sse.Comment("bye") })
		})
	}
}
