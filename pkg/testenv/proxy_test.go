package testenv

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// startEcho runs a line echo server for the proxy to forward to.
func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// echoOnce sends a line through conn and returns what came back.
func echoOnce(conn net.Conn, line string) (string, error) {
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(conn).ReadString('\n')
	return got, err
}

func TestProxyForwardsCutsAndRestores(t *testing.T) {
	p := StartProxy(t, startEcho(t))

	open, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if got, err := echoOnce(open, "hello"); err != nil || got != "hello\n" {
		t.Fatalf("through the proxy: %q, %v", got, err)
	}

	p.Cut()
	// The open connection fails at once, not after a timeout.
	start := time.Now()
	if _, err := echoOnce(open, "after cut"); err == nil {
		t.Fatal("an open connection still echoes after Cut")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("open connection took %v to fail after Cut", d)
	}
	// New connections are accepted and closed at once (or refused).
	start = time.Now()
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		if _, err := echoOnce(c, "new during cut"); err == nil {
			t.Fatal("a new connection echoes during Cut")
		}
		c.Close()
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("new connection took %v to fail during Cut", d)
	}

	p.Restore()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := echoOnce(c, "back"); err != nil || got != "back\n" {
		t.Fatalf("after Restore: %q, %v", got, err)
	}

	p.Close()
	if _, err := echoOnce(c, "after close"); err == nil {
		t.Error("a connection still echoes after Close")
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("the proxy still accepts after Close")
	}
	p.Close() // idempotent
}

func TestProxyFreezeHoldsTrafficUntilRestore(t *testing.T) {
	p := StartProxy(t, startEcho(t))
	open, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	rd := bufio.NewReader(open)
	if _, err := io.WriteString(open, "before\n"); err != nil {
		t.Fatal(err)
	}
	if got, err := rd.ReadString('\n'); err != nil || got != "before\n" {
		t.Fatalf("through the proxy: %q, %v", got, err)
	}

	p.Freeze()
	// Nothing comes back, and nothing fails either: the connection hangs.
	if _, err := io.WriteString(open, "held\n"); err != nil {
		t.Fatal(err)
	}
	_ = open.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if got, err := rd.ReadString('\n'); err == nil {
		t.Fatalf("echo %q came through a frozen proxy", got)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("frozen proxy: %v, want a timeout", err)
	}
	// A new connection is accepted but gets nothing through either.
	fresh, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	freshRd := bufio.NewReader(fresh)
	if _, err := io.WriteString(fresh, "fresh\n"); err != nil {
		t.Fatal(err)
	}

	p.Restore()
	// What was held is delivered, in order, on both connections.
	_ = open.SetReadDeadline(time.Now().Add(2 * time.Second))
	if got, err := rd.ReadString('\n'); err != nil || got != "held\n" {
		t.Fatalf("after Restore: %q, %v", got, err)
	}
	_ = fresh.SetReadDeadline(time.Now().Add(2 * time.Second))
	if got, err := freshRd.ReadString('\n'); err != nil || got != "fresh\n" {
		t.Fatalf("new connection after Restore: %q, %v", got, err)
	}

	// Cut ends a frozen connection too.
	p.Freeze()
	p.Cut()
	if _, err := echoOnce(open, "after cut"); err == nil {
		t.Fatal("connection echoes after Freeze and Cut")
	}
}
