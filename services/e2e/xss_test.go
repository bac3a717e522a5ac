package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// A comment full of markup and SSE framing is shown as the text it is,
// in the page that wrote it and in another one, and nothing runs.
func TestCommentIsText(t *testing.T) {
	br := startBrowser(t)
	c := startCluster(t, clusterOptions{replicas: 2})
	a := br.open(t, "A", c.replicas[0].URL, tabOptions{})
	b := br.open(t, "B", c.replicas[1].URL, tabOptions{})

	const payload = `<script>window.__pwned=1</script>` + "\n" +
		`<img src=x onerror="window.__pwned=2">` + "\n" +
		"\n\ndata: x\nevent: topic.deleted\n\n" +
		`<b onmouseover="window.__pwned=3">bold?</b> & &amp; "quotes" 'single'`
	// The server trims surrounding white space; what is left must come back
	// exactly.
	want := strings.TrimSpace(payload)
	countImages := `document.querySelectorAll('img').length`
	imagesBefore := map[string]int{a.name: eval[int](a, countImages), b.name: eval[int](b, countImages)}

	// Typed as a person would, then sent.
	a.post(payload)
	for _, p := range []*tab{a, b} {
		s := p.waitFor("the comment", liveWithin, func(s shown) bool { _, ok := s.withComment(want); return ok })
		tp, _ := s.withComment(want)
		li := fmt.Sprintf(`#topics li.topic[data-id="%d"]`, tp.ID)
		if n := eval[int](p, fmt.Sprintf(`document.querySelector(%s).childElementCount`, js(li+" p.comment"))); n != 0 {
			t.Errorf("%s: the comment was parsed into %d elements", p.name, n)
		}
		if pwned := eval[string](p, `typeof window.__pwned`); pwned != "undefined" {
			t.Errorf("%s: window.__pwned is %s: the comment's markup ran", p.name, pwned)
		}
		if n := eval[int](p, countImages); n != imagesBefore[p.name] {
			t.Errorf("%s: %d <img> elements, %d before the comment", p.name, n, imagesBefore[p.name])
		}
		// Hovering the "bold" part must not run a handler either.
		p.do(chromedp.ScrollIntoView(chromedp.CSS(li+" p.comment")), chromedp.Click(chromedp.CSS(li+" p.comment")))
		if pwned := eval[string](p, `typeof window.__pwned`); pwned != "undefined" {
			t.Errorf("%s: window.__pwned is %s after pointing at the comment", p.name, pwned)
		}
	}

	// The "data:" and "event:" lines did not break the stream: the next
	// change still arrives in order, and both pages match the API.
	next := "After the tricky one"
	a.post(next)
	for _, p := range []*tab{a, b} {
		p.waitFor("the next topic and the API's list", liveWithin, func(s shown) bool {
			_, ok := s.withComment(next)
			return ok && sameList(s, listTopics(t, c.replicas[1].URL))
		})
	}
	if got := listTopics(t, c.replicas[1].URL); len(got.Topics) != 2 || got.Topics[1].Comment != want {
		t.Errorf("the API lists %+v, want the comment and the next one", got.Topics)
	}
	a.checkClean(nil)
	b.checkClean(nil)
}
