package e2e

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/bbsboard/bbs/pkg/testenv"
)

// chromiumPath is where Debian's chromium package puts the browser;
// CHROMIUM overrides it for other systems.
const chromiumPath = "/usr/bin/chromium"

// probeJS watches each page for the tests; see the file for what it records.
//
//go:embed testdata/probe.js
var probeJS string

// actionTimeout bounds each step in a browser, so a stuck page fails the
// test with a message instead of hanging it.
const actionTimeout = 15 * time.Second

// headlessBrowser is one Chromium process with a fresh profile.
type headlessBrowser struct {
	ctx       context.Context
	userAgent string
}

func startBrowser(t *testing.T) *headlessBrowser {
	t.Helper()
	path := envOr("CHROMIUM", chromiumPath)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Chromium not found at %s (%v): install it with apt-get install -y chromium", path, err)
	}
	out := &logBuffer{}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // root in a container has no user namespaces
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		// Small /dev/shm in containers crashes renderers.
		chromedp.Flag("disable-dev-shm-usage", true),
		// Every page is "in the background" in headless mode; timers and
		// streams must run at full speed in all of them.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		// No host name resolves: whatever Chromium or the page might try,
		// traffic can only go to the 127.0.0.1 addresses the tests use.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("hide-scrollbars", true), // steady screenshots
		chromedp.Flag("password-store", "basic"),
		chromedp.WindowSize(1280, 800),
		chromedp.CombinedOutput(out),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("--- Chromium output (last lines) ---\n%s", out.tail(20, "dbus"))
		}
	})
	startCtx, cancelStart := context.WithTimeout(ctx, 30*time.Second)
	defer cancelStart()
	// The first call starts Chromium; it must not carry a timeout of its
	// own, which would end the browser with it, so start with ctx and
	// bound the wait separately.
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("start Chromium (%s): %v\n%s", path, err, out.tail(20, "dbus"))
		}
	case <-startCtx.Done():
		t.Fatalf("Chromium (%s) did not start within 30 s\n%s", path, out.tail(20, "dbus"))
	}
	v, err := chromedp.CallBrowser(ctx, browser.GetVersion, cdp.Empty{})
	if err != nil {
		t.Fatalf("Browser.getVersion: %v", err)
	}
	t.Logf("browser: %s", v.Product)
	return &headlessBrowser{ctx: ctx, userAgent: v.UserAgent}
}

// tab is one page of the board in its own browser context: its own
// localStorage (and so its own topic tokens) and cookies, like another
// person's browser.
type tab struct {
	t      *testing.T
	name   string
	ctx    context.Context
	origin string

	cancel context.CancelFunc // closes the tab

	mu       sync.Mutex
	problems []problem // errors the page caused
	requests []string  // every URL it asked for
}

type problem struct {
	source string // "exception", "console", or the browser log's source ("network", "security", ...)
	text   string
}

type tabOptions struct {
	// acceptLanguage sets navigator.languages (and Accept-Language);
	// empty means "en-US,en".
	acceptLanguage string
	// script runs in every document of the tab before the page's own
	// (e.g. to set a localStorage value the page reads at start).
	script string
}

// open loads the board from origin in a new browser context and waits
// until it is live with a list.
func (b *headlessBrowser) open(t *testing.T, name, origin string, opts tabOptions) *tab {
	t.Helper()
	return b.openIn(t, b.ctx, name, origin, opts, chromedp.WithNewBrowserContext())
}

// openIn opens the board in a new tab made from parent with ctxOpts: a
// parent that is a tab (or a profile, see newProfile) puts the new tab in
// the same browser context, as another tab of one person's browser.
func (b *headlessBrowser) openIn(t *testing.T, parent context.Context, name, origin string, opts tabOptions, ctxOpts ...chromedp.ContextOption) *tab {
	t.Helper()
	p := &tab{t: t, name: name, origin: origin}
	ctx, cancel := chromedp.NewContext(parent, append(ctxOpts, chromedp.WithListener(p.listen))...)
	t.Cleanup(cancel)
	p.ctx = ctx
	p.cancel = cancel
	if err := chromedp.Do(ctx); err != nil { // opens the tab
		t.Fatalf("%s: open tab: %v", name, err)
	}
	lang := opts.acceptLanguage
	if lang == "" {
		lang = "en-US,en"
	}
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument,
			page.AddScriptToEvaluateOnNewDocumentParams{Source: probeJS}); err != nil {
			return err
		}
		if opts.script != "" {
			if _, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument,
				page.AddScriptToEvaluateOnNewDocumentParams{Source: opts.script}); err != nil {
				return err
			}
		}
		_, err := cdp.Call(ctx, tg, emulation.SetUserAgentOverride,
			emulation.SetUserAgentOverrideParams{UserAgent: b.userAgent, AcceptLanguage: lang})
		return err
	}))
	p.do(chromedp.Navigate(origin + "/"))
	p.waitLive()
	return p
}

// listen runs in the tab's event loop: it must return quickly.
func (p *tab) listen(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		p.problems = append(p.problems, problem{"exception", text})
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
			}
			p.problems = append(p.problems, problem{"console", strings.Join(parts, " ")})
		}
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level == cdplog.EntryLevelError {
			p.problems = append(p.problems, problem{string(ev.Entry.Source), ev.Entry.Text + " " + ev.Entry.URL})
		}
	case *network.EventRequestWillBeSent:
		p.requests = append(p.requests, ev.Request.URL)
	}
}

// do runs actions in the tab, failing the test on error.
func (p *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

// eval evaluates a JavaScript expression in the tab (awaiting a promise).
func eval[T any](p *tab, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: evaluate %.80q: %v", p.name, expr, err)
	}
	return v
}

// js returns v as a JavaScript literal (JSON is one), for building
// expressions; Go's %q is not, e.g. for control characters.
func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// waitTrue polls a JavaScript expression until it is true.
func (p *tab) waitTrue(what, expr string) {
	p.t.Helper()
	testenv.Eventually(p.t, actionTimeout, func() error {
		if !eval[bool](p, expr) {
			return fmt.Errorf("%s: %s", p.name, what)
		}
		return nil
	})
}

// shown is what a page shows, as probe.js reads it.
type shown struct {
	At      int64        `json:"at"` // ms since the epoch, browser clock
	State   string       `json:"state"`
	Version int64        `json:"version"`
	Topics  []shownTopic `json:"topics"`
}

type shownTopic struct {
	ID      int64  `json:"id"`
	Comment string `json:"comment"`
}

func (s shown) find(id int64) (shownTopic, bool) {
	for _, t := range s.Topics {
		if t.ID == id {
			return t, true
		}
	}
	return shownTopic{}, false
}

func (s shown) withComment(comment string) (shownTopic, bool) {
	for _, t := range s.Topics {
		if t.Comment == comment {
			return t, true
		}
	}
	return shownTopic{}, false
}

func (p *tab) read() shown { return eval[shown](p, "__e2e.read()") }

// waitFor polls until cond holds for what the page shows.
func (p *tab) waitFor(what string, within time.Duration, cond func(shown) bool) shown {
	p.t.Helper()
	var s shown
	testenv.Eventually(p.t, within, func() error {
		if s = p.read(); !cond(s) {
			return fmt.Errorf("%s: %s; the page shows state=%s version=%d topics=%v", p.name, what, s.State, s.Version, s.Topics)
		}
		return nil
	})
	return s
}

// waitLive waits until the page is live and has its first list.
func (p *tab) waitLive() shown {
	p.t.Helper()
	return p.waitFor("live with a list", 10*time.Second, func(s shown) bool {
		return s.State == "live" && s.Version >= 0
	})
}

// clearLog forgets what the probe recorded so far.
func (p *tab) clearLog() { eval[chromedp.Void](p, "void (__e2e.log.length = 0)") }

// firstSeen returns when (browser clock, ms) the page first showed what
// cond describes, from the probe's log of every DOM change.
func (p *tab) firstSeen(cond func(shown) bool) (int64, bool) {
	p.t.Helper()
	for _, s := range eval[[]shown](p, "__e2e.log") {
		if cond(s) {
			return s.At, true
		}
	}
	return 0, false
}

// post types text into the form and sends it with Ctrl+Enter. It returns
// the moment (ms since the epoch) just before the key press.
func (p *tab) post(text string) int64 {
	p.t.Helper()
	p.do(chromedp.SendKeys(chromedp.ID("comment"), text))
	start := time.Now().UnixMilli()
	p.do(chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)))
	return start
}

// visible reports whether the element selector matches is rendered.
func (p *tab) visible(selector string) bool {
	p.t.Helper()
	return eval[bool](p, fmt.Sprintf(`(() => {
		const el = document.querySelector(%s);
		return !!el && el.checkVisibility();
	})()`, js(selector)))
}

// text returns the textContent of the first element selector matches.
func (p *tab) text(selector string) string {
	p.t.Helper()
	return eval[string](p, fmt.Sprintf(`(document.querySelector(%s) || {}).textContent ?? ""`, js(selector)))
}

// checkClean fails the test if the page threw, logged an error, violated
// its Content-Security-Policy or asked for anything outside its origin.
// excuse, when not nil, accepts the errors a test causes on purpose.
func (p *tab) checkClean(excuse func(problem) bool) {
	p.t.Helper()
	for _, v := range eval[[]string](p, "__e2e.csp") {
		p.t.Errorf("%s: CSP violation: %s", p.name, v)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.problems {
		if excuse != nil && excuse(pr) {
			continue
		}
		p.t.Errorf("%s: %s error: %s", p.name, pr.source, pr.text)
	}
	for _, u := range p.requests {
		if !strings.HasPrefix(u, p.origin+"/") && !strings.HasPrefix(u, "data:") {
			p.t.Errorf("%s: request outside the board's origin: %s", p.name, u)
		}
	}
}

// screenshot saves what the viewport shows as PNG.
func (p *tab) screenshot(path string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("%s: screenshot: %v", p.name, err)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// setValue replaces the value of a form field as pasting would, with the
// input event the page listens to. (chromedp.SetValue refuses "".)
func (p *tab) setValue(selector, value string) {
	p.t.Helper()
	eval[chromedp.Void](p, fmt.Sprintf(`(() => {
		const el = document.querySelector(%s);
		el.value = %s;
		el.dispatchEvent(new Event('input', {bubbles: true}));
	})()`, js(selector), js(value)))
}

// logBuffer keeps Chromium's output for the failure report.
type logBuffer struct{ testenv.LockedBuffer }

// tail returns the last lines, leaving out those that contain any of skip
// (noise such as Chromium's complaints about the missing D-Bus).
func (l *logBuffer) tail(lines int, skip ...string) string {
	all := strings.Split(strings.TrimRight(l.String(), "\n"), "\n")
	all = slices.DeleteFunc(all, func(line string) bool {
		return slices.ContainsFunc(skip, func(s string) bool { return strings.Contains(line, s) })
	})
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}
