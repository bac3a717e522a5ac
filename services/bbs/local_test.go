package main

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/bbsboard/bbs/pkg/wire"
)

// TestLocalMode is `make run`: no DATABASE_URL, no REDIS_URL. The same code
// runs on an embedded SQLite file with the in-process bus and cache; two
// streams follow creates, edits and deletes live, and the board survives a
// restart on the same file.
func TestLocalMode(t *testing.T) {
	dir := t.TempDir()
	cfg := map[string]string{"DATABASE_URL": "sqlite:" + filepath.Join(dir, "bbs.db")}
	r := startReplica(t, "local", cfg)
	tabs := []*view{watch(t, "tab1", r.URL, ""), watch(t, "tab2", r.URL, "")}

	a := r.create(t, "first")
	b := r.create(t, "second")
	if ans := testenv.Send(testenv.Request{Method: "PATCH", URL: topicURL(r, a.Topic.ID), Token: a.Token, JSON: wire.CommentBody{Comment: "first, edited"}}); ans.Status != http.StatusOK {
		t.Fatalf("edit: %v", ans)
	}
	if ans := testenv.Send(testenv.Request{Method: "DELETE", URL: topicURL(r, b.Topic.ID), Token: b.Token}); ans.Status != http.StatusNoContent {
		t.Fatalf("delete: %v", ans)
	}
	want := r.list(t)
	if want.Version != 4 || len(want.Topics) != 1 || want.Topics[0].Comment != "first, edited" {
		t.Fatalf("list = %+v", want)
	}
	for _, tab := range tabs {
		tab.waitVersion(4, 5*time.Second)
		sameList(t, tab.name, tab.state(), want)
		tab.check()
	}

	// Restart on the same file: the board and its version are still there.
	for _, tab := range tabs {
		tab.close()
	}
	r.stop()
	r = startReplica(t, "local-again", cfg)
	sameList(t, "after restart", r.list(t), want)
	c := r.create(t, "after restart")
	if got := r.list(t); got.Version != 5 || got.Topics[0].ID != c.Topic.ID {
		t.Fatalf("after restart: %+v", got)
	}
}
