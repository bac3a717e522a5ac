//go:build !linux

package main

import "net"

// stopListening closes ln. On Linux it first waits for a moment when the
// accept queue is empty and stops the socket then, so that no connection
// a client may have sent its request on is reset; here a connection that
// arrives as the listener closes may be.
func stopListening(ln net.Listener) error { return ln.Close() }
