package testenv

import (
	"net"
	"testing"
)

// ConnPair returns both ends of a real loopback TCP connection, closed
// when the test ends. Streams write to server with non-blocking system
// calls, which net.Pipe would not exercise.
func ConnPair(t testing.TB) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: listen: %v", err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("testenv: dial: %v", err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("testenv: accept failed")
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}
