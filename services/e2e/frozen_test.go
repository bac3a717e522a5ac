package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// freeze sets the tab's lifecycle state, as Chromium does to a background
// tab it freezes to save power: frozen, the page runs no script (and holds
// its Web Lock) until it is made active again.
func (p *tab) freeze(frozen bool) {
	p.t.Helper()
	state := page.SetWebLifecycleStateStateActive
	if frozen {
		state = page.SetWebLifecycleStateStateFrozen
	}
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.SetWebLifecycleState, page.SetWebLifecycleStateParams{State: state})
		return err
	}))
}

// frozenWithin bounds how soon the other tabs show a post once the leader
// froze: they wait for 3 s of silence from it (twice its 1.5 s beat), then
// one takes the stream over.
const frozenWithin = 15 * time.Second

// TestFrozenLeaderTab: the leader tab is frozen and stays open, holding the
// Web Lock, so the lock alone would leave the other tabs waiting on it for
// ever. They notice its relay went silent, one takes the lock from it and
// resumes the stream after its version: a post from another tab reaches
// every other tab within seconds, exactly once. Made active again, the old
// leader follows and catches up.
func TestFrozenLeaderTab(t *testing.T) {
	br := startBrowser(t)
	c := startCluster(t, clusterOptions{replicas: 1})
	origin := c.replicas[0].URL
	profile := br.newProfile(t)

	tabs := make([]*tab, 4)
	for i := range tabs {
		tabs[i] = br.openIn(t, profile, fmt.Sprintf("tab %d", i+1), origin, tabOptions{})
	}
	var leader *tab
	var rest []*tab
	for _, p := range tabs {
		p.waitLive()
		if p.role() == "leader" {
			leader = p
		} else {
			rest = append(rest, p)
		}
	}
	if leader == nil || len(rest) != len(tabs)-1 {
		t.Fatalf("want one leader among %d tabs, have %d followers", len(tabs), len(rest))
	}
	postTopic(t, origin, "before the freeze "+randomName(""))
	want := listTopics(t, origin)
	for _, p := range tabs {
		p.waitFor("the post before the freeze", liveWithin, func(s shown) bool { return sameList(s, want) })
		p.clearLog()
	}

	frozen := time.Now()
	leader.freeze(true)
	text := "while the leader is frozen " + randomName("")
	has := func(s shown) bool { _, ok := s.withComment(text); return ok }
	start := rest[0].post(text)
	for _, p := range rest {
		p.waitFor("the post made while the leader is frozen", frozenWithin, has)
	}
	var worst int64
	for _, p := range rest {
		if at, ok := p.firstSeen(has); ok && at-start > worst {
			worst = at - start
		}
	}
	leaders := 0
	for _, p := range rest {
		if p.role() == "leader" {
			leaders++
		}
	}
	t.Logf("FIGURE frozen leader: %s frozen; the post from %s shown in the other %d tabs within %d ms of it (%v after the freeze); %d of them lead now",
		leader.name, rest[0].name, len(rest), worst, time.Since(frozen).Round(time.Millisecond), leaders)
	if leaders != 1 {
		t.Errorf("%d tabs lead while %s is frozen, want 1", leaders, leader.name)
	}

	// Exactly once: each tab holds the API's list, and its version went up
	// one at a time (no event applied twice, none skipped).
	postTopic(t, origin, "after the take-over "+randomName(""))
	want = listTopics(t, origin)
	for _, p := range rest {
		p.waitFor("the API's list after the take-over", liveWithin, func(s shown) bool { return sameList(s, want) })
		checkVersionSteps(t, p)
	}

	// Thawed, the old leader finds its lock taken, follows, and catches up.
	leader.freeze(false)
	leader.waitTrue("the old leader follows once thawed", `document.documentElement.dataset.streamRole === 'follower'`)
	postTopic(t, origin, "after the thaw "+randomName(""))
	want = listTopics(t, origin)
	for _, p := range tabs {
		p.waitFor("the API's list after the thaw", liveWithin, func(s shown) bool { return sameList(s, want) })
	}
	leaders = 0
	for _, p := range tabs {
		if p.role() == "leader" {
			leaders++
		}
		p.checkClean(nil)
	}
	if leaders != 1 {
		t.Errorf("%d leader tabs after the thaw, want 1", leaders)
	}
}

// checkVersionSteps fails the test if the tab's version ever moved other
// than by one (an event applied twice, or one skipped), per the probe's log.
func checkVersionSteps(t *testing.T, p *tab) {
	t.Helper()
	last := int64(-1)
	for _, s := range eval[[]shown](p, "__e2e.log") {
		if last >= 0 && s.Version != last && s.Version != last+1 {
			t.Errorf("%s: version went from %d to %d", p.name, last, s.Version)
		}
		last = s.Version
	}
}
