package main

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// pollers read every stream's socket from one epoll loop per CPU instead
// of a goroutine per connection: the loader shares the machine's cores
// with the servers it measures, and a goroutine wake-up per event would
// take time the servers need (on Linux only, like the /proc readings).
type pollers struct {
	ps   []*poller
	next atomic.Uint32
}

type poller struct {
	epfd int

	mu      sync.Mutex
	streams map[int32]*stream
}

func newPollers() (*pollers, error) {
	out := &pollers{}
	for range runtime.NumCPU() {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return nil, fmt.Errorf("epoll_create1: %w", err)
		}
		p := &poller{epfd: epfd, streams: map[int32]*stream{}}
		out.ps = append(out.ps, p)
		go p.run()
	}
	return out, nil
}

// add hands s's socket to a poller. The connection stays open in Go but
// nothing in Go reads it any more; bytes the HTTP reader had buffered
// beyond the response head come first.
func (ps *pollers) add(s *stream, conn net.Conn, buffered []byte) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return errors.New("not a socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var fd int
	if err := raw.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return err
	}
	p := ps.ps[int(ps.next.Add(1))%len(ps.ps)]
	s.fd, s.poller = int32(fd), p
	p.mu.Lock()
	defer p.mu.Unlock()
	s.feed(buffered, time.Now().UnixNano())
	p.streams[s.fd] = s
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: s.fd}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		delete(p.streams, s.fd)
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// remove stops reading s; call it before closing the connection, so that
// a reused descriptor number never reaches the wrong stream.
func (p *poller) remove(s *stream) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.streams[s.fd] == s {
		delete(p.streams, s.fd)
		_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(s.fd), nil)
	}
}

func (p *poller) run() {
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.EpollWait(p.epfd, events, 1000)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		now := time.Now().UnixNano()
		p.mu.Lock()
		for _, ev := range events[:n] {
			s := p.streams[ev.Fd]
			if s == nil {
				continue
			}
			m, err := syscall.Read(int(ev.Fd), buf)
			switch {
			case m > 0:
				s.feed(buf[:m], now)
			case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
			default: // end of stream or an error: the server closed it
				delete(p.streams, ev.Fd)
				_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(ev.Fd), nil)
				s.end(err)
			}
		}
		p.mu.Unlock()
	}
}
