// Package topic provides the board's domain: the Topic value, the rules a
// comment must follow, the changes that versions are assigned to, and the
// per-topic secrets that let an author edit or delete what they wrote.
package topic

import (
	"errors"
	"time"
)

// Errors the domain reports; the HTTP layer maps them onto status codes.
var (
	ErrNotFound     = errors.New("topic not found")
	ErrInvalid      = errors.New("invalid comment")
	ErrUnauthorized = errors.New("missing token")
	ErrForbidden    = errors.New("wrong token")
	ErrUnavailable  = errors.New("database unavailable")
	// ErrOutcomeUnknown is a write whose COMMIT was sent but never
	// answered (a timeout, the connection lost while committing): it may
	// or may not have landed. Unlike ErrUnavailable it does not mean
	// "nothing was written".
	ErrOutcomeUnknown = errors.New("write outcome unknown")
	// ErrKeyReused is an idempotency key sent again with another request
	// than the one it was first used for.
	ErrKeyReused = errors.New("idempotency key reused for a different request")
)

// Topic is one post on the board.
type Topic struct {
	ID        int64
	Comment   string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Kind names what a change did to a topic.
type Kind string

// The kinds of change. How they are spelled elsewhere is each layer's
// business: the change log's column and the bus notice (store, wire) and
// the SSE event names (wire.EventName) say topic.created.
const (
	Created Kind = "created"
	Updated Kind = "updated"
	Deleted Kind = "deleted"
	// Reset marks where the database's history was rewritten (restored to
	// an earlier point, then written again): nothing before it may be
	// replayed across it, so whoever crosses it takes a snapshot. Clients
	// never see it as an event.
	Reset Kind = "reset"
)

// Change is one committed write, stamped with the cluster-wide version it
// was committed at. For Deleted, ID names the topic and Fill, when set, is
// the topic that slides into the first page in its place (as it was at
// Version). Stamp is random per change: two histories that reached the same
// version differ in it.
type Change struct {
	Version int64
	Kind    Kind
	ID      int64
	Topic   Topic
	Fill    *Topic
	Stamp   int64
	// Redacted marks a logged change whose text was removed because its
	// topic (or its fill) was deleted since: it can no longer be replayed.
	Redacted bool
	// Committed is when the writing replica saw the COMMIT return, for
	// measuring delivery lag; zero when unknown (a change read from the
	// change log, or a notice from a replica that does not send it).
	Committed time.Time
}

// Page is a run of topics, newest first, read at one version. Stamp is the
// stamp of the change that made Version (0 for version 0).
type Page struct {
	Version int64
	Stamp   int64
	Topics  []Topic
}

// History is a read of the change log against the database's head, taken
// in one snapshot: Head and HeadStamp are the latest version and its stamp,
// At the stamp of the entry at the version asked from (0 when it is not in
// the log), and Changes the entries after it, in order.
type History struct {
	Head      int64
	HeadStamp int64
	At        int64
	AtFound   bool
	Changes   []Change
}
