// Package wire defines the JSON that leaves the process: API bodies, SSE
// event data and bus messages, and converts domain values to and from it.
//
// Conversions follow one pattern, as pkg/store's rows do: XOf builds the
// wire value X from a domain value (TopicOf, EventOf, NoticeOf), and its
// Domain method gives the domain value back (store's rows: domain).
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

// TopicOf converts a domain topic.
func TopicOf(t topic.Topic) Topic {
	return Topic{ID: t.ID, Comment: t.Comment, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

// Domain converts back.
func (t Topic) Domain() topic.Topic {
	return topic.Topic{ID: t.ID, Comment: t.Comment, CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC()}
}

// TopicsOf converts a list, never returning nil (clients get [] not null).
func TopicsOf(ts []topic.Topic) []Topic {
	out := make([]Topic, len(ts))
	for i, t := range ts {
		out[i] = TopicOf(t)
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

// The SSE event names of the changes clients see (a reset is never sent).
const (
	EventCreated = "topic.created"
	EventUpdated = "topic.updated"
	EventDeleted = "topic.deleted"
)

// EventName is the SSE event name of a change of kind k.
func EventName(k topic.Kind) string {
	switch k {
	case topic.Created:
		return EventCreated
	case topic.Updated:
		return EventUpdated
	case topic.Deleted:
		return EventDeleted
	}
	return string(k)
}

// kindOf reads a notice's kind, which is spelled as its event name (a
// reset: "reset"), as replicas of every release spell it, so that old and
// new read each other's notices through a rolling update. A kind it does
// not know reads as "".
func kindOf(s string) topic.Kind {
	switch s {
	case EventCreated:
		return topic.Created
	case EventUpdated:
		return topic.Updated
	case EventDeleted:
		return topic.Deleted
	case string(topic.Reset):
		return topic.Reset
	}
	return ""
}

// EventOf converts a change to its event data.
func EventOf(c topic.Change) Event {
	if c.Kind == topic.Deleted {
		return Event{Version: c.Version, ID: c.ID, Fill: optionalTopicOf(c.Fill)}
	}
	t := TopicOf(c.Topic)
	return Event{Version: c.Version, Topic: &t}
}

func optionalTopicOf(t *topic.Topic) *Topic {
	if t == nil {
		return nil
	}
	w := TopicOf(*t)
	return &w
}

// Notice is a change as replicas tell each other on the bus.
type Notice struct {
	Version int64  `json:"v"`
	Kind    string `json:"k"` // see kindOf
	ID      int64  `json:"id"`
	Topic   *Topic `json:"t,omitempty"`
	Fill    *Topic `json:"f,omitempty"`
	Stamp   int64  `json:"s,omitempty"`
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
	n := Notice{Version: c.Version, Kind: EventName(c.Kind), ID: c.ID, Stamp: c.Stamp, Fill: optionalTopicOf(c.Fill)}
	if !c.Committed.IsZero() {
		n.Committed = c.Committed.UnixMicro()
	}
	if c.Kind == topic.Created || c.Kind == topic.Updated {
		t := TopicOf(c.Topic)
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
	switch kindOf(n.Kind) {
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

// Domain converts a notice back to the change it announces.
func (n Notice) Domain() topic.Change {
	c := topic.Change{Version: n.Version, Kind: kindOf(n.Kind), ID: n.ID, Stamp: n.Stamp}
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
