package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/wire"
)

// TestLocalMode is `make run`: no DATABASE_URL, no REDIS_URL. The same code
// runs on an embedded SQLite file with the in-process bus and cache; two
// streams follow creates, edits and deletes live, and the board survives a
// restart on the same file.
func TestLocalMode(t *testing.T) {
	dir := t.TempDir()
	cfg := map[string]string{
		"HTTP_ADDR":    "127.0.0.1:0",
		"DATABASE_URL": "sqlite:" + filepath.Join(dir, "bbs.db"),
		"REPLICA_ID":   "local",
	}
	r := startReplica(t, "local", cfg)
	tabs := []*view{watch(t, "tab1", r.URL, ""), watch(t, "tab2", r.URL, "")}

	a := r.create(t, "first")
	b := r.create(t, "second")
	if code := do(t, "PATCH", fmt.Sprintf("%s/api/topics/%d", r.URL, a.Topic.ID), a.Token, wire.CommentBody{Comment: "first, edited"}, nil); code != http.StatusOK {
		t.Fatalf("edit: %d", code)
	}
	if code := do(t, "DELETE", fmt.Sprintf("%s/api/topics/%d", r.URL, b.Topic.ID), b.Token, nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
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
