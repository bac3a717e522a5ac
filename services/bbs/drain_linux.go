//go:build linux

package main

import (
	"errors"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// stopListening stops ln listening at a moment when its accept queue is
// empty, so that no connection the kernel has already set up for a client
// is reset; connections that come later are refused. The server's accept
// loop then ends (Serve returns), and http.Server.Shutdown closes the
// socket.
//
// Closing a listener resets every connection still in its accept queue,
// and the client may already have sent its request on it (its side of the
// handshake is complete before the server accepts): nginx answers such a
// POST 502, as it never retries a request it has sent, while a refused
// connection it retries on the next replica. Closing at an arbitrary
// moment catches whatever arrived since the server's accept loop last
// ran, tens of microseconds to milliseconds on a busy machine. Here the
// queue's length (TCP_INFO's unacked, for a listening socket) is read and
// the socket is shut down (shutdown(2) on a listening socket stops it at
// once, unlike close, which waits for the accept loop to let go of it) in
// two system calls back to back, leaving a window of microseconds.
//
// A client that connects inside that window can still be reset: only a
// load balancer that has stopped sending here (Kubernetes removes a
// terminating pod's endpoints) closes it entirely. (A socket filter that
// drops SYNs would close it, but this project's machines refuse
// SO_ATTACH_FILTER.)
func stopListening(ln net.Listener) error {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return errors.ErrUnsupported
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return err
	}
	giveUp := time.Now().Add(time.Second)
	for {
		late := time.Now().After(giveUp)
		var stopped bool
		var serr error
		if err := rc.Control(func(fd uintptr) {
			info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
			if err != nil {
				serr = err
				return
			}
			if info.Unacked == 0 || late {
				stopped, serr = true, unix.Shutdown(int(fd), unix.SHUT_RD)
			}
		}); err != nil {
			return err
		}
		if serr != nil || stopped {
			return serr
		}
		// Connections wait in the queue: the server's accept loop takes them.
		time.Sleep(time.Millisecond)
	}
}
