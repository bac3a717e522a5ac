package api_test

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/feed"
)

// TestPageToldHeartbeat: the page learns the replica's SSE_HEARTBEAT (in
// milliseconds), from which it tells a stream held back by a proxy; the
// script is loaded as a module, which the CSP's script-src 'self' allows.
func TestPageToldHeartbeat(t *testing.T) {
	b := startBoardWith(t, slog.New(slog.DiscardHandler), feed.Config{Limit: 5, Heartbeat: 2500 * time.Millisecond})
	resp, err := http.Get(b.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if want := `<meta name="bbs-heartbeat" content="2500">`; !strings.Contains(page, want) {
		t.Errorf("the page lacks %s", want)
	}
	if strings.Count(page, `name="bbs-heartbeat"`) != 1 {
		t.Error("the page should carry the heartbeat once")
	}
	if !strings.Contains(page, `<script type="module" src="/static/main.js">`) ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("script tag or CSP: %q", resp.Header.Get("Content-Security-Policy"))
	}
	// Modules are fetched with their MIME type checked.
	for _, module := range []string{"main.js", "board.js", "stream.js"} {
		resp, err := http.Get(b.url + "/static/" + module)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/javascript") {
			t.Errorf("/static/%s: %d %q, want 200 text/javascript", module, resp.StatusCode, ct)
		}
	}
}
