package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// newProfile makes a browser context (one person's browser profile: its
// storage, locks and broadcast channels) held by a blank tab for the whole
// test, so that any tab opened in it with openIn can be closed on its own.
func (b *headlessBrowser) newProfile(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("new browser context: %v", err)
	}
	return ctx
}

// role is how the tab takes part in the shared stream: "leader" (holds it
// for every tab), "follower" (applies what the leader relays) or "solo".
func (p *tab) role() string {
	return eval[string](p, `document.documentElement.dataset.streamRole || ''`)
}

// target is how soon a post should show in every tab of the browser
// (issue 12: 2 s) and a closed leader's lock pass to another tab (1 s).
// They are logged against the measured times; the test fails only past
// liveWithin, like the other browser tests, since the machine running them
// may be busy (DESIGN: no test asserts a wall-clock speed).
const (
	targetAllTabs  = 2 * time.Second
	targetHandover = time.Second
)

// TestTabsShareOneStream: ten tabs of the board in one browser profile,
// against one replica over plain HTTP/1.1, where Chromium allows six
// connections per origin for the whole profile. With a stream per tab the
// seventh tab never loads and posts wait forever; with one stream shared by
// the tabs, all load, all are live, a post from any tab shows in all of
// them, and when the leader tab closes another takes over and every tab
// keeps receiving every event exactly once.
func TestTabsShareOneStream(t *testing.T) { testTabsShareOneStream(t, 10, "") }

// TestTabsShareOneStreamWithoutWebLocks: the same where the page has no
// Web Locks (a plain-HTTP page on a host other than localhost is not a
// secure context): the tabs elect their leader with a lease in
// localStorage. Seven tabs are one more than a stream per tab allows.
func TestTabsShareOneStreamWithoutWebLocks(t *testing.T) {
	testTabsShareOneStream(t, 7, `Object.defineProperty(Navigator.prototype, 'locks', {get: () => undefined, configurable: true})`)
}

// testTabsShareOneStream opens n tabs of one profile, each running script
// before the page's own.
func testTabsShareOneStream(t *testing.T, n int, script string) {
	br := startBrowser(t)
	c := startCluster(t, clusterOptions{replicas: 1})
	origin := c.replicas[0].URL
	profile := br.newProfile(t)

	tabs := make([]*tab, n)
	for i := range tabs {
		tabs[i] = br.openIn(t, profile, fmt.Sprintf("tab %d", i+1), origin, tabOptions{script: script})
	}
	leaders := 0
	for _, p := range tabs {
		p.waitLive()
		switch r := p.role(); r {
		case "leader":
			leaders++
		case "follower":
		default:
			t.Errorf("%s: stream role %q, want leader or follower (Web Locks and BroadcastChannel exist here)", p.name, r)
		}
	}
	if leaders != 1 {
		t.Fatalf("%d leader tabs, want 1", leaders)
	}

	// A post typed into the first, a middle and the last tab (1, 6 and 10
	// of ten) shows in all of them.
	var allTabs []int64
	for _, i := range []int{0, n / 2, n - 1} {
		text := fmt.Sprintf("from %s %s", tabs[i].name, randomName(""))
		has := func(s shown) bool { _, ok := s.withComment(text); return ok }
		for _, p := range tabs {
			p.clearLog()
		}
		start := tabs[i].post(text)
		for _, p := range tabs {
			p.waitFor("the post from "+tabs[i].name, liveWithin, has)
		}
		var worst int64
		for _, p := range tabs {
			if at, ok := p.firstSeen(has); ok {
				if d := at - start; d > worst {
					worst = d
				}
			}
		}
		t.Logf("post from %s: shown in all %d tabs within %d ms (target %v)", tabs[i].name, n, worst, targetAllTabs)
		allTabs = append(allTabs, worst)
		tabs[i].waitTrue("the form empties after the post", `document.getElementById('comment').value === ''`)
	}

	slices.Sort(allTabs)
	t.Logf("FIGURE post to all %d tabs: median %d ms, max %d ms over %d posts (target %v)", n, allTabs[len(allTabs)/2], allTabs[len(allTabs)-1], len(allTabs), targetAllTabs)

	// Close the leader: another tab takes over and resumes the stream. A
	// post made the moment it closes reaches every other tab.
	var rest []*tab
	var leader *tab
	for _, p := range tabs {
		if p.role() == "leader" {
			leader = p
		} else {
			rest = append(rest, p)
		}
	}
	for _, p := range rest {
		p.clearLog()
	}
	closed := time.Now()
	leader.cancel()
	first := "right after the close " + randomName("")
	postTopic(t, origin, first)
	var next *tab
	for next == nil {
		for _, p := range rest {
			if p.role() == "leader" && p.read().State == "live" {
				next = p
				break
			}
		}
		if time.Since(closed) > liveWithin {
			t.Fatalf("no tab took over the stream within %v of closing %s", liveWithin, leader.name)
		}
		if next == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	handover := time.Since(closed)
	since := eval[int64](next, `Number(document.documentElement.dataset.leaderSince)`)
	t.Logf("leader %s closed: %s took the lock %d ms after the close was asked (target %v); seen leading with its stream open after %d ms",
		leader.name, next.name, since-closed.UnixMilli(), targetHandover, handover.Milliseconds())
	hasFirst := func(s shown) bool { _, ok := s.withComment(first); return ok }
	var delivered int64
	for _, p := range rest {
		p.waitFor("the post made as the leader closed", liveWithin, hasFirst)
		if at, ok := p.firstSeen(hasFirst); ok && at-closed.UnixMilli() > delivered {
			delivered = at - closed.UnixMilli()
		}
	}
	t.Logf("FIGURE leader hand-over: %d ms from closing the leader to the next event shown in all %d remaining tabs", delivered, len(rest))

	// Every later event reaches every tab exactly once: each tab ends with
	// exactly the API's list and version, and saw each version once.
	for _, p := range rest {
		p.clearLog()
	}
	for i := range 3 {
		postTopic(t, origin, fmt.Sprintf("after the hand-over %d %s", i, randomName("")))
	}
	want := listTopics(t, origin)
	for _, p := range rest {
		p.waitFor("the API's list after the hand-over", liveWithin, func(s shown) bool { return sameList(s, want) })
		// The version only ever goes up one at a time: no event twice,
		// none skipped.
		checkVersionSteps(t, p)
	}
	for _, p := range rest {
		if r := p.role(); r != "leader" && r != "follower" {
			t.Errorf("%s: role %q after the hand-over", p.name, r)
		}
		p.checkClean(nil)
	}
}
