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

// The kinds of change, spelled as the SSE event names use them.
const (
	Created Kind = "topic.created"
	Updated Kind = "topic.updated"
	Deleted Kind = "topic.deleted"
)

// Change is one committed write, stamped with the cluster-wide version it
// was committed at. For Deleted only ID is meaningful.
type Change struct {
	Version int64
	Kind    Kind
	ID      int64
	Topic   Topic
}

// Page is a run of topics, newest first, read at one version.
type Page struct {
	Version int64
	Topics  []Topic
}
