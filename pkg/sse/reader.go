package sse

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// Event is one event as a client sees it.
type Event struct {
	ID    string
	Name  string // "message" when the stream named none
	Data  string
	Retry int64 // -1 when the event set none
}

// Reader parses an event stream as a browser does.
type Reader struct {
	r      *bufio.Reader
	lastID string
}

// NewReader reads events from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 64<<10)} }

// LastID is the last event id seen, what a browser sends as Last-Event-ID.
func (r *Reader) LastID() string { return r.lastID }

// Next returns the next event with data, or one that only sets retry.
// Comments (heartbeats) are skipped.
func (r *Reader) Next() (Event, error) {
	ev := Event{Retry: -1}
	var data strings.Builder
	hasData := false
	for {
		line, err := r.r.ReadString('\n')
		if err != nil {
			return Event{}, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if hasData || ev.Retry >= 0 {
				ev.Data = strings.TrimSuffix(data.String(), "\n")
				if ev.Name == "" {
					ev.Name = "message"
				}
				ev.ID = r.lastID
				return ev, nil
			}
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			r.lastID = value
		case "event":
			ev.Name = value
		case "data":
			data.WriteString(value)
			data.WriteByte('\n')
			hasData = true
		case "retry":
			if n, err := strconv.ParseInt(value, 10, 64); err == nil {
				ev.Retry = n
			}
		}
	}
}
