// Package wire defines the JSON that leaves the process: API bodies, SSE
// event data and bus messages, and converts domain values to and from it.
package wire

import (
	"fmt"
	"math"
	"time"

	"github.com/bbsboard/bbs/pkg/topic"
)

// Topic is a topic as clients see it.
type Topic struct {
	ID        int64     `json:"id"`
	Comment   string    `json:"comment"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// FromTopic converts a domain topic.
func FromTopic(t topic.Topic) Topic {
	return Topic{ID: t.ID, Comment: t.Comment, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

// Domain converts back.
func (t Topic) Domain() topic.Topic {
	return topic.Topic{ID: t.ID, Comment: t.Comment, CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC()}
}

// FromTopics converts a list, never returning nil (clients get [] not null).
func FromTopics(ts []topic.Topic) []Topic {
	out := make([]Topic, len(ts))
	for i, t := range ts {
		out[i] = FromTopic(t)
	}
	return out
}

// List is the body of GET /api/topics and the data of the SSE snapshot
// event. Limit, on the snapshot, is the window the server keeps: a client
// that applies topic.created keeps at most Limit topics, as the server does.
type List struct {
	Version int64   `json:"version"`
	Topics  []Topic `json:"topics"`
	Limit   int     `json:"limit,omitempty"`
}

// Event is the data of a topic.created, topic.updated or topic.deleted SSE
// event: Topic for the first two, ID for the last. A delete's Fill, when
// present, is the topic that slides into the first page if the deleted one
// was on it (see ApplyEvent).
type Event struct {
	Version int64  `json:"version"`
	Topic   *Topic `json:"topic,omitempty"`
	ID      int64  `json:"id,omitempty"`
	Fill    *Topic `json:"fill,omitempty"`
}

// FromChange converts a change to its event data.
func FromChange(c topic.Change) Event {
	if c.Kind == topic.Deleted {
		return Event{Version: c.Version, ID: c.ID, Fill: fromOptional(c.Fill)}
	}
	t := FromTopic(c.Topic)
	return Event{Version: c.Version, Topic: &t}
}

func fromOptional(t *topic.Topic) *Topic {
	if t == nil {
		return nil
	}
	w := FromTopic(*t)
	return &w
}

// Notice is a change as replicas tell each other on the bus.
type Notice struct {
	Version int64      `json:"v"`
	Kind    topic.Kind `json:"k"`
	ID      int64      `json:"id"`
	Topic   *Topic     `json:"t,omitempty"`
	Fill    *Topic     `json:"f,omitempty"`
	Stamp   int64      `json:"s,omitempty"`
	// Committed is when the writer saw the COMMIT return, in Unix
	// microseconds (0 or absent: unknown, as in notices from replicas
	// that predate it). It only feeds the delivery-lag metric: nothing
	// about applying the change depends on it or on clocks agreeing.
	Committed int64 `json:"c,omitempty"`
}

// PeekVersion reads a notice's version without decoding it, when the
// notice begins as encoding/json writes a Notice: {"v":N, with v first. A
// replica hears every notice, its own included, and most arrive when it
// already holds their version (its own, applied at COMMIT; duplicates
// after a catch-up): those need not be decoded at all. ok is false when
// the message begins any other way; it is then decoded in full. (A
// message naming v twice would be decoded with its last; bbs names each
// field once.)
func PeekVersion(msg []byte) (v int64, ok bool) {
	const prefix = `{"v":`
	if len(msg) < len(prefix)+2 || string(msg[:len(prefix)]) != prefix {
		return 0, false
	}
	i := len(prefix)
	for ; i < len(msg) && msg[i] >= '0' && msg[i] <= '9'; i++ {
		if v > (math.MaxInt64-9)/10 {
			return 0, false
		}
		v = v*10 + int64(msg[i]-'0')
	}
	if i == len(prefix) || i == len(msg) || msg[i] != ',' && msg[i] != '}' {
		return 0, false
	}
	return v, true
}

// NoticeOf converts a committed change to its bus notice.
func NoticeOf(c topic.Change) Notice {
	n := Notice{Version: c.Version, Kind: c.Kind, ID: c.ID, Stamp: c.Stamp, Fill: fromOptional(c.Fill)}
	if !c.Committed.IsZero() {
		n.Committed = c.Committed.UnixMicro()
	}
	if c.Kind == topic.Created || c.Kind == topic.Updated {
		t := FromTopic(c.Topic)
		n.Topic = &t
	}
	return n
}

// Validate reports whether a notice is well formed: a positive version, a
// known kind, and for that kind exactly the fields it needs. A replica
// never applies one that is not (it reads the database instead).
func (n Notice) Validate() error {
	if n.Version <= 0 {
		return fmt.Errorf("notice: version %d", n.Version)
	}
	switch n.Kind {
	case topic.Created, topic.Updated:
		if n.ID <= 0 || n.Topic == nil || n.Topic.ID != n.ID || n.Fill != nil {
			return fmt.Errorf("notice %d: %s must carry its topic, id %d", n.Version, n.Kind, n.ID)
		}
	case topic.Deleted:
		if n.ID <= 0 || n.Topic != nil || (n.Fill != nil && (n.Fill.ID <= 0 || n.Fill.ID == n.ID)) {
			return fmt.Errorf("notice %d: malformed delete of %d", n.Version, n.ID)
		}
	case topic.Reset:
		if n.ID != 0 || n.Topic != nil || n.Fill != nil {
			return fmt.Errorf("notice %d: malformed reset", n.Version)
		}
	default:
		return fmt.Errorf("notice %d: unknown kind %q", n.Version, n.Kind)
	}
	return nil
}

// Change converts a notice back to the change it announces.
func (n Notice) Change() topic.Change {
	c := topic.Change{Version: n.Version, Kind: n.Kind, ID: n.ID, Stamp: n.Stamp}
	if n.Committed > 0 {
		c.Committed = time.UnixMicro(n.Committed)
	}
	if n.Topic != nil {
		c.Topic = n.Topic.Domain()
	}
	if n.Fill != nil {
		f := n.Fill.Domain()
		c.Fill = &f
	}
	return c
}

// Error is the body of every 4xx and 5xx answer.
type Error struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody names the error for programs (Code) and for people (Message).
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// CommentBody is what POST and PATCH accept.
type CommentBody struct {
	Comment string `json:"comment"`
}

// Created is the answer to a create: the topic and, this once, its token.
type Created struct {
	Topic Topic  `json:"topic"`
	Token string `json:"token"`
}

// One is the answer to an edit.
type One struct {
	Topic Topic `json:"topic"`
}
