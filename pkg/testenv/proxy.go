package testenv

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy between a server under test and one of its
// dependencies (Postgres, Redis), so a test can make the dependency
// unreachable and reachable again without touching the real server: other
// tests keep using it undisturbed.
//
// Cut models a dependency that is down and says so: every connection,
// open or new, is closed at once (with a reset), so clients get an error in
// milliseconds rather than waiting on a timeout. Freeze models one that
// hangs (a network partition, a stopped VM): connections stay open but no
// byte gets through either way, so only the client's own timeouts help.
type Proxy struct {
	target string
	ln     net.Listener

	mu      sync.Mutex
	flowing *sync.Cond // signalled when cut, frozen or closed change
	cut     bool
	frozen  bool
	closed  bool
	conns   map[net.Conn]struct{} // both ends of every live pair
	wg      sync.WaitGroup        // accept loop and pipes
}

// StartProxy listens on a free loopback port and forwards every connection
// to target (host:port). It is closed when the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: proxy listen: %v", err)
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.flowing = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port, to put in the client's URL instead of the
// target's.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every current connection and makes the proxy close new ones
// as soon as they are accepted, until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		reset(c)
	}
	clear(p.conns)
	p.flowing.Broadcast()
}

// Freeze stops every byte in both directions, on open and new connections
// alike, without closing anything, until Restore (or Cut). A side that
// closes its end still ends the pair: only data is held.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = true
}

// Restore forwards again: frozen connections resume where they stopped;
// connections cut before stay closed and clients must reconnect, as after
// a real outage.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut, p.frozen = false, false
	p.flowing.Broadcast()
}

// Close stops listening, closes every connection and waits for the
// proxy's goroutines to end. It is safe to call more than once.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.flowing.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}

// waitFlowing blocks while the proxy is frozen; it reports false once the
// proxy is cut or closed, when nothing may get through any more.
func (p *Proxy) waitFlowing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.frozen && !p.cut && !p.closed {
		p.flowing.Wait()
	}
	return !p.cut && !p.closed
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		refuse := p.cut || p.closed
		p.mu.Unlock()
		if refuse {
			reset(client)
			continue
		}
		p.wg.Add(1)
		go p.forward(client)
	}
}

// forward dials the target for one client and copies both ways until
// either side ends, then closes both.
func (p *Proxy) forward(client net.Conn) {
	defer p.wg.Done()
	if !p.waitFlowing() {
		reset(client)
		return
	}
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		reset(client)
		return
	}
	p.mu.Lock()
	if p.cut || p.closed {
		// Cut while we were dialling: the client must not get through.
		p.mu.Unlock()
		reset(client)
		server.Close()
		return
	}
	p.conns[client] = struct{}{}
	p.conns[server] = struct{}{}
	p.mu.Unlock()

	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		p.copy(dst, src)
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done
	// One direction ended: end the pair, so the other copy returns too.
	client.Close()
	server.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// copy forwards src to dst, holding each chunk while the proxy is frozen.
func (p *Proxy) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitFlowing() {
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// reset closes c with an RST rather than a FIN, so the peer's next read or
// write fails at once instead of seeing a clean end of stream it might
// wait on.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
