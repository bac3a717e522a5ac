package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
)

// streamBytes opens a stream on url with Last-Event-ID lastID and returns
// everything it sent within d.
func streamBytes(t *testing.T, url, lastID string, d time.Duration) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/topics/stream", nil)
	req.Header.Set("Last-Event-ID", lastID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	defer resp.Body.Close()
	// d of the stream, counted from its head (a busy machine may take a
	// while to answer).
	stop := time.AfterFunc(d, cancel)
	defer stop.Stop()
	var buf bytes.Buffer
	_, _ = io.Copy(&buf, resp.Body) // ends at d
	return buf.Bytes()
}

// TestDeletedTextNeverReplayed: once a topic is deleted, soft or purged,
// no public path hands its text out again: not a resume from an older id
// (from memory on the replicas that saw it, or from the change log on one
// that started later), not a page, not the shared cache. Before, any
// resume from before the delete replayed the topic's creation, text and
// all, for as long as the change log kept it (a day).
func TestDeletedTextNeverReplayed(t *testing.T) {
	for _, purge := range []bool{false, true} {
		t.Run("purge="+strconv.FormatBool(purge), func(t *testing.T) {
			c := newCluster(t, "")
			r1, r2 := c.start("r1", nil), c.start("r2", nil)
			r1.create(t, "before")
			secret := r1.create(t, "a secret to be deleted")
			r2.create(t, "after")
			v := watch(t, "client", r2.URL, "")
			v.waitVersion(3, 5*time.Second)
			url := topicURL(r1, secret.Topic.ID)
			if purge {
				url += "?purge=true"
			}
			token := secret.Token
			if purge {
				token = "admin-secret"
			}
			if a := testenv.Send(testenv.Request{Method: "DELETE", URL: url, Token: token}); a.Status != http.StatusNoContent {
				t.Fatalf("delete: %v", a)
			}
			v.waitVersion(4, 5*time.Second)
			late := c.start("late", nil) // its memory never held the text: the log path
			for _, r := range []*replica{r1, r2, late} {
				for _, from := range []string{"0", "1", "2", "3"} {
					got := streamBytes(t, r.URL, from, 300*time.Millisecond)
					if bytes.Contains(got, []byte("a secret")) {
						t.Errorf("%s: resume from %s replays the deleted text:\n%s", r.id, from, got)
					}
					if from != "3" && !bytes.Contains(got, []byte("after")) {
						t.Errorf("%s: resume from %s does not bring the board: %q", r.id, from, got)
					}
				}
				if l := databaseList(t, r); strings.Contains(listJSON(l), "a secret") {
					t.Errorf("%s: a page lists the deleted topic", r.id)
				}
			}
			rdb, key := c.redis(t)
			if d, _ := rdb.HGet(context.Background(), key("snapshot"), "d").Result(); strings.Contains(d, "a secret") {
				t.Errorf("the shared cache holds the deleted text")
			}
			// A client that resumes across the delete still ends where
			// everyone is.
			resumed := watch(t, "resumed", late.URL, "1")
			resumed.waitVersion(4, 5*time.Second)
			sameList(t, "resumed across the delete", resumed.state(), r1.list(t))
			v.check()
		})
	}
}
