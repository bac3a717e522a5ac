package soak

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// verifyWrites holds every finished write's answer to the change log, once
// the model has read the log past it: a 2xx write must be there, a refused
// one must have left no trace. Writes whose outcome is unknown (no answer,
// 503 outcome_unknown) are whatever the log says.
func (h *harness) verifyWrites() {
	h.book.mu.Lock()
	writes := slices.Clone(h.book.writes)
	h.book.mu.Unlock()
	// Per topic, whether some delete or purge of it may have happened.
	mayDelete := map[int64]bool{}
	for _, w := range writes {
		if isDelete(w.op) && w.verdict != "refused" {
			mayDelete[w.id] = true
		}
	}
	for _, w := range writes {
		if w.checked {
			continue
		}
		w.checked = true
		h.stats.inc("checks writes against the change log")
		ref, inLog := h.model.marker(w.n)
		switch {
		case strings.HasPrefix(w.op, "create") && h.model.markerCount(w.n) > 1:
			h.div.report("one create made several topics", "w%d %s on %s (retried with the same Idempotency-Key: %v): %d topic.created entries carry its comment",
				w.n, w.op, w.rep, w.retried, h.model.markerCount(w.n))
		case w.verdict == "acked" && strings.HasPrefix(w.op, "create"):
			// A later delete scrubs the topic's text from the log: then only
			// the entry itself can be asked for.
			created, comments, deletes := h.model.topicLog(w.id)
			if !created || (len(deletes) == 0 && !slices.Contains(comments, w.comment)) {
				h.div.report("acknowledged create missing from the change log", "w%d on %s: 201 topic %d %q; log: created %v, comments %q",
					w.n, w.rep, w.id, short(w.comment, 40), created, comments)
			}
		case w.verdict == "acked" && strings.HasPrefix(w.op, "edit"):
			if _, _, deletes := h.model.topicLog(w.id); !inLog && len(deletes) > 0 {
				h.stats.inc("checks writes whose text a later delete scrubbed from the log")
			} else if !inLog || ref.kind != "topic.updated" || ref.id != w.id {
				h.div.report("acknowledged edit missing from the change log", "w%d %s on %s: 200 for topic %d; log has %+v (found %v)", w.n, w.op, w.rep, w.id, ref, inLog)
			}
		case w.verdict == "acked" && isDelete(w.op):
			if _, _, deletes := h.model.topicLog(w.id); len(deletes) == 0 {
				h.div.report("acknowledged delete missing from the change log", "w%d %s on %s: 204 for topic %d, no topic.deleted in the log", w.n, w.op, w.rep, w.id)
			}
		case w.verdict == "refused" && w.marked && inLog:
			h.div.report(refusedCategory(w), "w%d %s on %s answered %d %s, yet the log has it at version %d (%s of topic %d)",
				w.n, w.op, w.rep, w.o.status, w.o.code, ref.version, ref.kind, ref.id)
		case w.verdict == "refused" && isDelete(w.op) && !mayDelete[w.id]:
			if _, _, deletes := h.model.topicLog(w.id); len(deletes) > 0 {
				h.div.report(refusedCategory(w), "w%d %s on %s answered %d %s for topic %d, yet the log deletes it at %v and no other delete of it was accepted",
					w.n, w.op, w.rep, w.o.status, w.o.code, w.id, deletes)
			}
		}
	}
}

func isDelete(op string) bool {
	return strings.HasPrefix(op, "delete") || strings.HasPrefix(op, "purge")
}

func refusedCategory(w *write) string {
	if w.o.status == 503 {
		return fmt.Sprintf("write answered 503 %s (nothing written) is in the change log", w.o.code)
	}
	return "refused write left a trace in the change log"
}

// verifyPurges checks, at the end, what the database holds of purged
// topics: an acknowledged purge leaves no row and no text in the log;
// a refused purge (and no other) leaves the row.
func (h *harness) verifyPurges(ctx context.Context) {
	h.book.mu.Lock()
	writes := slices.Clone(h.book.writes)
	h.book.mu.Unlock()
	purged, mayPurge := map[int64]int{}, map[int64]bool{}
	for _, w := range writes {
		if strings.HasPrefix(w.op, "purge") && w.verdict != "refused" {
			mayPurge[w.id] = true
		}
		if w.op == "purge-admin" && w.verdict == "acked" {
			purged[w.id] = w.n
		}
	}
	for _, w := range writes {
		if w.verdict == "refused" && strings.HasPrefix(w.op, "purge") && !mayPurge[w.id] {
			var n int
			if err := h.pg.QueryRow(ctx, "SELECT count(*) FROM topics WHERE id = $1", w.id).Scan(&n); err == nil && n == 0 {
				h.div.report(refusedCategory(w), "w%d %s on %s answered %d %s, yet topic %d has no row and no other purge of it was accepted",
					w.n, w.op, w.rep, w.o.status, w.o.code, w.id)
			}
		}
	}
	for id, n := range purged {
		h.stats.inc("checks purges against the database")
		var rows, texts int
		err := h.pg.QueryRow(ctx, `SELECT (SELECT count(*) FROM topics WHERE id = $1),
 (SELECT count(*) FROM topic_changes WHERE topic_id = $1 AND comment IS NOT NULL)`, id).Scan(&rows, &texts)
		if err != nil {
			continue
		}
		if rows > 0 {
			h.div.report("purged topic still has its row", "w%d purged topic %d (204); topics still has it", n, id)
		}
		if texts > 0 {
			h.div.report("purged topic's text still in the change log", "w%d purged topic %d (204); %d change-log entries still carry its text", n, id, texts)
		}
	}
}
