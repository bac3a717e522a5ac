package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bbsboard/bbs/pkg/metrics"
	"github.com/bbsboard/bbs/pkg/topic"
	"github.com/bbsboard/bbs/pkg/wire"
	"github.com/gin-gonic/gin"
)

// maxLimit bounds one page of topics.
const maxLimit = 500

func (s *Server) list(c *gin.Context) {
	limit, before := s.feed.Limit(), int64(0)
	var err error
	if q := c.Query("limit"); q != "" {
		if limit, err = strconv.Atoi(q); err != nil || limit < 1 || limit > maxLimit {
			fail(c, http.StatusBadRequest, "invalid_limit", "limit must be an integer from 1 to 500")
			return
		}
	}
	if q := c.Query("before"); q != "" {
		if before, err = strconv.ParseInt(q, 10, 64); err != nil || before < 1 {
			fail(c, http.StatusBadRequest, "invalid_before", "before must be a positive topic id")
			return
		}
	}
	// The first page within the window comes from memory: no database read.
	if before == 0 && limit <= s.feed.Limit() {
		if page, encoded, ok := s.feed.List(limit); ok {
			s.m.ListReads.WithLabelValues(metrics.SourceWindow).Inc()
			if encoded != nil {
				c.Data(http.StatusOK, "application/json; charset=utf-8", encoded)
			} else {
				c.JSON(http.StatusOK, wire.List{Version: page.Version, Topics: wire.TopicsOf(page.Topics)})
			}
			return
		}
	}
	s.m.ListReads.WithLabelValues(metrics.SourceDatabase).Inc()
	page, err := s.store.Page(c.Request.Context(), before, limit)
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.List{Version: page.Version, Topics: wire.TopicsOf(page.Topics)})
}

// timeWrite records how long a write took the store, transaction and
// COMMIT included (what GORM's statement timings leave out), in
// bbs_db_write_duration_seconds. Timed here, at the call, so the store's
// write path needs nothing of metrics.
func (s *Server) timeWrite(op string, began time.Time, err error) {
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, topic.ErrOutcomeUnknown):
		result = "unknown"
	case errors.Is(err, topic.ErrUnavailable):
		result = "unavailable"
	default:
		result = "refused"
	}
	s.m.DBWrite.WithLabelValues(op, result).Observe(time.Since(began).Seconds())
}

// idempotencyKeyHeader names the key a client sends with a POST so that
// it can retry it safely (Go's http.Transport also retries such a request
// by itself when a kept-alive connection closes under it).
const idempotencyKeyHeader = "Idempotency-Key"

func (s *Server) create(c *gin.Context) {
	form := isForm(c.Request)
	key := c.GetHeader(idempotencyKeyHeader)
	if _, sent := c.Request.Header[idempotencyKeyHeader]; sent && !topic.ValidKey(key) {
		fail(c, http.StatusBadRequest, "invalid_idempotency_key",
			fmt.Sprintf("Idempotency-Key must be %d to %d characters of A-Z, a-z, 0-9, - and _", topic.MinKeyLen, topic.MaxKeyLen))
		return
	}
	comment, ok := s.readComment(c, form)
	if !ok {
		return
	}
	var (
		token    string
		t        topic.Topic
		replayed bool
		err      error
	)
	began := time.Now()
	if key == "" {
		var hash []byte
		token, hash = topic.NewToken()
		t, _, err = s.store.Create(c.Request.Context(), comment, hash)
	} else {
		// The token comes from the key, so a retry gets the same one back.
		var hash []byte
		token, hash = topic.KeyToken(key)
		t, _, replayed, err = s.store.CreateOnce(c.Request.Context(), comment, hash, topic.KeyHash(key))
	}
	s.timeWrite("create", began, err)
	if errors.Is(err, topic.ErrNotFound) {
		fail(c, http.StatusGone, "deleted", "the topic created with this Idempotency-Key has been deleted since")
		return
	}
	if err != nil {
		s.failErr(c, err)
		return
	}
	if replayed {
		// A retry of a create that had landed: nothing new was written.
		c.Header("Idempotent-Replayed", "true")
	}
	if form {
		// A browser without script posted the form: back to the board.
		c.Redirect(http.StatusSeeOther, "/")
		return
	}
	c.JSON(http.StatusCreated, wire.Created{Topic: wire.TopicOf(t), Token: token})
}

func (s *Server) update(c *gin.Context) {
	id, ok := topicID(c)
	if !ok {
		return
	}
	comment, ok := s.readComment(c, false)
	if !ok {
		return
	}
	token := bearer(c.Request)
	if token == "" {
		// Answered before the database is asked: without a token nobody
		// may take the topic's row lock.
		s.failErr(c, topic.ErrUnauthorized)
		return
	}
	began := time.Now()
	t, _, err := s.store.Update(c.Request.Context(), id, comment, func(hash []byte) error {
		return s.auth.Check(token, hash)
	})
	s.timeWrite("update", began, err)
	if err != nil {
		s.failErr(c, err)
		return
	}
	s.audit(c, "edit", id, token)
	c.JSON(http.StatusOK, wire.One{Topic: wire.TopicOf(t)})
}

func (s *Server) delete(c *gin.Context) {
	id, ok := topicID(c)
	if !ok {
		return
	}
	token := bearer(c.Request)
	purge := c.Query("purge") == "true"
	if token == "" {
		s.failErr(c, topic.ErrUnauthorized)
		return
	}
	if purge && !s.auth.IsAdmin(token) {
		s.failErr(c, topic.ErrForbidden)
		return
	}
	began := time.Now()
	_, err := s.store.Delete(c.Request.Context(), id, purge, func(hash []byte) error {
		return s.auth.Check(token, hash)
	})
	s.timeWrite("delete", began, err)
	if err != nil {
		s.failErr(c, err)
		return
	}
	action := "delete"
	if purge {
		action = "purge"
	}
	s.audit(c, action, id, token)
	c.Status(http.StatusNoContent)
}

// audit records a moderator's change to a topic (made with the admin
// token, so to somebody else's topic) in one structured line: what, which
// topic, from which address, and who, as a fingerprint of the token that
// tells tokens apart without revealing them. The token itself is never
// logged.
func (s *Server) audit(c *gin.Context, action string, id int64, token string) {
	if !s.auth.IsAdmin(token) {
		return
	}
	sum := sha256.Sum256([]byte(token))
	s.log.Info("admin action", "audit", true, "action", action, "topic", id,
		"actor", "admin:"+hex.EncodeToString(sum[:4]),
		"client", clientIP(c.Request, s.cfg.TrustedProxies).String())
}

// readComment decodes and normalises the comment of a JSON body (or of a
// form post), answering the 4xx itself when it is refused.
func (s *Server) readComment(c *gin.Context, form bool) (string, bool) {
	var raw string
	if form {
		body, err := readBody(c.Request, c.Writer)
		if err == nil {
			raw, err = formComment(body)
		}
		if err != nil {
			var eb *errBody
			if errors.As(err, &eb) {
				fail(c, eb.status, eb.code, eb.message)
			}
			return "", false
		}
	} else {
		var body wire.CommentBody
		if err := decodeJSON(c.Request, c.Writer, &body); err != nil {
			eb := err.(*errBody)
			fail(c, eb.status, eb.code, eb.message)
			return "", false
		}
		raw = body.Comment
	}
	comment, err := topic.NormalizeComment(raw)
	if err != nil {
		s.failErr(c, err)
		return "", false
	}
	return comment, true
}

func isForm(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded"
}

func topicID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		fail(c, http.StatusNotFound, "not_found", "no topic with this id")
		return 0, false
	}
	return id, true
}

// bearer returns the token of "Authorization: Bearer <token>", or "".
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}
