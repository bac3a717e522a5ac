package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestNarrowScreenFooter: on a 390 px phone in Japanese the form's footer
// keeps the counter and the Post button on one line each, and hides the
// keyboard hint (Ctrl+Enter), which means nothing on a touch screen.
func TestNarrowScreenFooter(t *testing.T) {
	br := startBrowser(t)
	c := startCluster(t, clusterOptions{replicas: 1})
	p := br.open(t, "phone", c.replicas[0].URL, tabOptions{acceptLanguage: "ja-JP,ja"})
	for _, screen := range []struct {
		name string
		opts []chromedp.EmulateViewportOption
	}{
		{"a phone", []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch}},
		{"a narrow window", nil},
	} {
		p.do(chromedp.EmulateViewport(390, 844, screen.opts...))
		checkNarrowFooter(t, p, screen.name)
	}
	// Back at desktop size the hint is there again.
	p.do(chromedp.EmulateViewport(1280, 800))
	if !p.visible("#post-hint") {
		t.Errorf("the keyboard hint is hidden on a desktop")
	}
	p.checkClean(nil)
}

func checkNarrowFooter(t *testing.T, p *tab, screen string) {
	t.Helper()
	// Fill to the limit so the counter is at its widest.
	p.setValue("#comment", strings.Repeat("あ", 2000))
	lines := func(selector string) int {
		return eval[int](p, fmt.Sprintf(`(() => {
			const r = document.createRange();
			r.selectNodeContents(document.querySelector(%s));
			return new Set([...r.getClientRects()].map((b) => Math.round(b.top))).size;
		})()`, js(selector)))
	}
	for _, sel := range []string{"#counter", "#post-button"} {
		if n := lines(sel); n != 1 {
			t.Errorf("%s: %s takes %d lines at 390 px in Japanese, want 1", screen, sel, n)
		}
	}
	if p.visible("#post-hint") {
		t.Errorf("%s: the keyboard hint (%q) shows", screen, p.text("#post-hint"))
	}
	if got := p.text("#post-button"); got != "投稿" {
		t.Errorf("%s: post button reads %q, want 投稿", screen, got)
	}
	if w := eval[int](p, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("%s: the page is %d px wide on a 390 px screen", screen, w)
	}
}
