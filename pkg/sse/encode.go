// Package sse provides Server-Sent Events: the wire encoding, a hub that
// hands one encoded frame to many streams through bounded queues, and a
// reader for clients and tests.
package sse

import (
	"bytes"
	"strconv"
)

// Frame is one encoded event as it goes on the wire, with the version it
// carries (0 for comments such as heartbeats). Frames are encoded once and
// shared by every stream; nobody may modify Data.
type Frame struct {
	Version int64
	Data    []byte
}

// Encode returns the frame for an event: "id:", "event:", then data. Any
// CR or LF in the event name or id is dropped and every line of data gets
// its own "data:" field, so no payload can end the event early or forge
// fields of its own.
func Encode(id int64, event string, data []byte) Frame {
	var b bytes.Buffer
	b.Grow(len(data) + len(event) + 40)
	// Every event carries its id, the empty board's version 0 included: a
	// client that reconnects must be able to say where it was.
	b.WriteString("id: ")
	b.WriteString(strconv.FormatInt(id, 10))
	b.WriteByte('\n')
	if event != "" {
		b.WriteString("event: ")
		writeLine(&b, []byte(event))
		b.WriteByte('\n')
	}
	for {
		line, rest, more := cutLine(data)
		b.WriteString("data: ")
		writeLine(&b, line)
		b.WriteByte('\n')
		if !more {
			break
		}
		data = rest
	}
	b.WriteByte('\n')
	return Frame{Version: id, Data: b.Bytes()}
}

// Retry is the frame that sets how long a client waits before reconnecting.
func Retry(ms int64) Frame {
	return Frame{Data: []byte("retry: " + strconv.FormatInt(ms, 10) + "\n\n")}
}

// Comment is a frame clients ignore; heartbeats use it to keep proxies
// from closing idle streams.
func Comment(text string) Frame {
	var b bytes.Buffer
	b.WriteString(": ")
	writeLine(&b, []byte(text))
	b.WriteString("\n\n")
	return Frame{Data: b.Bytes()}
}

// cutLine splits at the first CR, LF or CRLF, the three line ends SSE knows.
func cutLine(p []byte) (line, rest []byte, found bool) {
	i := bytes.IndexAny(p, "\r\n")
	if i < 0 {
		return p, nil, false
	}
	if p[i] == '\r' && i+1 < len(p) && p[i+1] == '\n' {
		return p[:i], p[i+2:], true
	}
	return p[:i], p[i+1:], true
}

// writeLine writes p without any CR or LF.
func writeLine(b *bytes.Buffer, p []byte) {
	for _, c := range p {
		if c != '\r' && c != '\n' {
			b.WriteByte(c)
		}
	}
}
