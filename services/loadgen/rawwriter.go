package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// rawWriter is one closed-loop writer of the throughput runs: it keeps one
// HTTP/1.1 connection per replica and speaks the protocol by hand, the way
// wrk and pgbench's own client do. Go's http.Client cost the loader 0.11–
// 0.13 ms of CPU per create, a quarter of the whole cluster's, on the two
// cores it shares with the replicas: the run measured the loader as much
// as the server. It only understands what bbs answers a create with: a
// status line, headers with a Content-Length, a body.
type rawWriter struct {
	src   netip.Addr
	conns map[string]*rawConn
	req   []byte // reused: the request being sent
}

type rawConn struct {
	c  net.Conn
	br *bufio.Reader
}

func newRawWriter(src netip.Addr) *rawWriter {
	return &rawWriter{src: src, conns: map[string]*rawConn{}}
}

// create posts one topic through target (host:port) and returns how long
// the answer took. A failed exchange drops the connection; the next create
// dials again.
func (w *rawWriter) create(ctx context.Context, target string) (time.Duration, error) {
	rc, err := w.conn(ctx, target)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	body := strconv.AppendInt([]byte(`{"comment":"bench `), start.UnixNano(), 10)
	body = append(body, `"}`...)
	w.req = append(w.req[:0], "POST /api/topics HTTP/1.1\r\nHost: "...)
	w.req = append(w.req, target...)
	w.req = append(w.req, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	w.req = strconv.AppendInt(w.req, int64(len(body)), 10)
	w.req = append(w.req, "\r\n\r\n"...)
	w.req = append(w.req, body...)
	if deadline, ok := ctx.Deadline(); ok {
		_ = rc.c.SetDeadline(deadline)
	} else {
		_ = rc.c.SetDeadline(start.Add(30 * time.Second))
	}
	status, keep, err := exchange(rc, w.req)
	if err != nil || !keep {
		rc.c.Close()
		delete(w.conns, target)
	}
	if err != nil {
		return 0, fmt.Errorf("create via %s: %w", target, err)
	}
	if status != 201 {
		return 0, fmt.Errorf("create via %s: status %d", target, status)
	}
	return time.Since(start), nil
}

func (w *rawWriter) conn(ctx context.Context, target string) (*rawConn, error) {
	if rc := w.conns[target]; rc != nil {
		return rc, nil
	}
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(w.src, 0)), Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, err
	}
	rc := &rawConn{c: c, br: bufio.NewReaderSize(c, 4096)}
	w.conns[target] = rc
	return rc, nil
}

func (w *rawWriter) close() {
	for _, rc := range w.conns {
		rc.c.Close()
	}
}

// exchange sends req and reads the answer: its status, and whether the
// connection may carry another request.
func exchange(rc *rawConn, req []byte) (status int, keep bool, err error) {
	if _, err := rc.c.Write(req); err != nil {
		return 0, false, err
	}
	line, err := rc.br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 201 Created\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, false, fmt.Errorf("unexpected status line %q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, false, fmt.Errorf("unexpected status line %q", line)
	}
	length, keep := -1, true
	for {
		line, err := rc.br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, false, fmt.Errorf("unexpected header %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, false, errors.New("a chunked answer to a create (the raw writer reads Content-Length only)")
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			keep = false
		}
	}
	if length < 0 {
		return 0, false, errors.New("an answer without Content-Length")
	}
	if _, err := rc.br.Discard(length); err != nil {
		return 0, false, fmt.Errorf("read body: %w", err)
	}
	if rc.br.Buffered() > 0 {
		return 0, false, errors.New("bytes after the answer")
	}
	return status, keep, nil
}
