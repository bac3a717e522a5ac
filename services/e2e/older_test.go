package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestShowOlder: with a first page of 5 and 15 topics, "show older" pages
// back with before= until the first topic ever written is shown, while new
// topics arrive on top; the page then shows every topic, newest first,
// exactly as the API has them.
func TestShowOlder(t *testing.T) {
	br := startBrowser(t)
	const limit = 5
	c := startCluster(t, clusterOptions{replicas: 1, env: []string{fmt.Sprintf("SNAPSHOT_LIMIT=%d", limit)}})
	origin := c.replicas[0].URL
	var first apiTopic
	for i := range 3 * limit {
		tp, _ := postTopic(t, origin, fmt.Sprintf("topic %d %s", i, randomName("")))
		if i == 0 {
			first = tp
		}
	}
	p := br.open(t, "reader", origin, tabOptions{})
	p.waitFor("the first page", liveWithin, func(s shown) bool { return len(s.Topics) == limit })

	clicks := 0
	for p.visible("#show-older") {
		if clicks > 3*limit {
			t.Fatalf("show older is still there after %d clicks", clicks)
		}
		p.do(chromedp.Click(chromedp.ID("show-older")))
		clicks++
		p.waitTrue("the older page has loaded", `!document.getElementById('show-older').disabled`)
		if clicks == 1 {
			// New topics arrive meanwhile: they go on top, and the topics
			// they push off the first page stay in the list.
			for i := range 2 {
				postTopic(t, origin, fmt.Sprintf("new while paging %d %s", i, randomName("")))
			}
			want := listTopics(t, origin)
			p.waitFor("the new topics on top", liveWithin, func(s shown) bool {
				return s.Version == want.Version && len(s.Topics) > 0 && s.Topics[0].ID == want.Topics[0].ID
			})
		}
		time.Sleep(50 * time.Millisecond)
	}
	all := listAll(t, origin)
	s := p.waitFor("every topic, newest first", liveWithin, func(s shown) bool {
		if len(s.Topics) != len(all) {
			return false
		}
		for i, tp := range all {
			if s.Topics[i].ID != tp.ID || s.Topics[i].Comment != tp.Comment {
				return false
			}
		}
		return true
	})
	if last := s.Topics[len(s.Topics)-1]; last.ID != first.ID {
		t.Errorf("the list ends at #%d, want the first topic ever written, #%d", last.ID, first.ID)
	}
	t.Logf("show older: %d clicks reached the first topic; %d topics shown", clicks, len(s.Topics))
	eval[chromedp.Void](p, `window.scrollTo(0, document.documentElement.scrollHeight)`)
	shoot(t, p, screenshotDir(t), "older")
	p.checkClean(nil)

	// Without JavaScript: the page carries one page of topics as plain HTML
	// (in <noscript>) with a link to the older ones, down to the first.
	var ids []int64
	next, pages := "/", 0
	for next != "" {
		pages++
		if pages > 3*limit {
			t.Fatalf("still an older link after %d pages", pages)
		}
		status, body := apiDo(t, "GET", origin+next, "", nil)
		if status != 200 {
			t.Fatalf("GET %s: %d", next, status)
		}
		html := string(body)
		for _, m := range noscriptTopicRE.FindAllStringSubmatch(html, -1) {
			id, _ := strconv.ParseInt(m[1], 10, 64)
			ids = append(ids, id)
		}
		next = ""
		if m := olderLinkRE.FindStringSubmatch(html); m != nil {
			next = m[1]
		}
	}
	var want []int64
	for _, tp := range all {
		want = append(want, tp.ID)
	}
	if !slices.Equal(ids, want) {
		t.Errorf("without JavaScript, %d pages show topics %v, want %v", pages, ids, want)
	}
	t.Logf("without JavaScript: %d pages reached the first topic", pages)
}

var (
	noscriptTopicRE = regexp.MustCompile(`<li class="topic" id="topic-(\d+)">`)
	olderLinkRE     = regexp.MustCompile(`href="(/\?before=\d+)">Older topics</a>`)
)

// listAll returns every topic, newest first, in one page.
func listAll(t *testing.T, base string) []apiTopic {
	t.Helper()
	var out apiList
	status, body := apiDo(t, "GET", base+"/api/topics?limit=500", "", nil)
	if status != 200 {
		t.Fatalf("GET /api/topics?limit=500: %d %s", status, body)
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Topics
}
