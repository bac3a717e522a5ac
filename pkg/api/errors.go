package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/bbsboard/bbs/pkg/feed"
	"github.com/bbsboard/bbs/pkg/sse"
	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/bbsboard/bbs/pkg/wire"
	"github.com/gin-gonic/gin"
)

// notReady is the answer while the replica starts or drains.
var notReady = wire.ErrorBody{Code: "not_ready", Message: "this replica is starting or shutting down; try again"}

// fail answers with the standard error body.
func fail(c *gin.Context, status int, code, message string) {
	c.AbortWithStatusJSON(status, wire.Error{Error: wire.ErrorBody{Code: code, Message: message}})
}

// failErr maps an error from the domain onto its status. The message of a
// 500 is generic; its detail goes to the log only.
func (s *Server) failErr(c *gin.Context, err error) {
	switch {
	case errors.Is(err, topic.ErrInvalid):
		fail(c, http.StatusUnprocessableEntity, "invalid_comment", err.Error())
	case errors.Is(err, topic.ErrNotFound):
		fail(c, http.StatusNotFound, "not_found", "no topic with this id")
	case errors.Is(err, topic.ErrUnauthorized):
		c.Header("WWW-Authenticate", `Bearer realm="bbs"`)
		fail(c, http.StatusUnauthorized, "unauthorized", "send the topic's token as Authorization: Bearer <token>")
	case errors.Is(err, topic.ErrForbidden):
		fail(c, http.StatusForbidden, "forbidden", "this token may not change this topic")
	case errors.Is(err, topic.ErrKeyReused):
		fail(c, http.StatusUnprocessableEntity, "idempotency_key_reused",
			"this Idempotency-Key was already used for a different topic; send a new key with each new post")
	case errors.Is(err, topic.ErrOutcomeUnknown):
		// The COMMIT was sent and never answered: the write may have
		// landed. Saying "nothing was written" here would make the client's
		// retry a duplicate.
		s.log.Warn("write outcome unknown", "route", c.FullPath(), "err", err)
		c.Header("Retry-After", "2")
		fail(c, http.StatusServiceUnavailable, "outcome_unknown", outcomeUnknownMessage(c.Request))
	case errors.Is(err, topic.ErrUnavailable):
		s.log.Warn("database unavailable", "route", c.FullPath(), "err", err)
		c.Header("Retry-After", "5")
		fail(c, http.StatusServiceUnavailable, "unavailable", "the database is unavailable; nothing was written, try again shortly")
	case errors.Is(err, feed.ErrNotReady), errors.Is(err, sse.ErrClosed):
		c.Header("Retry-After", "1")
		c.AbortWithStatusJSON(http.StatusServiceUnavailable, wire.Error{Error: notReady})
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads the answer, and it is no
		// server error.
		s.log.Debug("request canceled by client", "route", c.FullPath())
		c.AbortWithStatus(499)
	default:
		s.log.Error("request failed", "route", c.FullPath(), "err", err)
		fail(c, http.StatusInternalServerError, "internal", "internal error")
	}
}

// outcomeUnknownMessage tells the client what it can safely do after a
// write whose outcome is unknown.
func outcomeUnknownMessage(r *http.Request) string {
	const unknown = "the database did not confirm the write: it may or may not have been saved. "
	switch {
	case r.Method == http.MethodPost && r.Header.Get(idempotencyKeyHeader) != "":
		return unknown + "Retry with the same Idempotency-Key: the topic is never created twice, and the retry answers with it and its token"
	case r.Method == http.MethodPost:
		return unknown + "Check the board before posting again; send an Idempotency-Key with posts to make retries safe"
	case r.Method == http.MethodDelete:
		return unknown + "Retry the delete: a 404 then means it was already deleted"
	default:
		return unknown + "Retry the same request; applying it twice gives the same result"
	}
}
