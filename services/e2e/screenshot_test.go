package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
)

// seeded is the board the screenshots show: topics of different ages, so
// the relative times read like a real board's. Oldest first.
var seeded = []struct {
	comment      string
	age, editAge time.Duration // editAge 0: never edited
}{
	{"Welcome to bbs! Whatever you post here shows up at once in every open browser, whichever server it is connected to.", 3 * 24 * time.Hour, 0},
	{"こんにちは！日本語でも投稿できます。右上のボタンで表示の言語を切り替えられます。", 5 * time.Hour, 0},
	{"Deploy went fine: three replicas behind the load balancer, all green.", 2 * time.Hour, 70 * time.Minute},
	{"Lunch at 12:30? The new ramen place on the corner has a free table.", 25 * time.Minute, 0},
	{"明日の勉強会は19時からです。資料は共有フォルダにあります。", 4 * time.Minute, 0},
	// Just under a minute old when the board starts: the page must turn
	// "just now" into "1 min ago" by itself.
	{"Is anyone else watching this update live?", 52 * time.Second, 0},
}

// seedBoard writes the seeded topics straight into the database before any
// replica starts, because only the database can backdate them. Each has a
// token hash nobody holds, so no browser can edit them.
func seedBoard(ctx context.Context, db *pgx.Conn) error {
	for _, s := range seeded {
		hash := sha256.Sum256([]byte(rand.Text()))
		updated := s.age
		if s.editAge > 0 {
			updated = s.editAge
		}
		_, err := db.Exec(ctx, `INSERT INTO topics (comment, token_hash, created_at, updated_at)
			VALUES ($1, $2, now() - make_interval(secs => $3), now() - make_interval(secs => $4))`,
			s.comment, hash[:], s.age.Seconds(), updated.Seconds())
		if err != nil {
			return err
		}
	}
	return nil
}

// The page in English and in Japanese, on a desktop and on a phone: the
// screenshots land in screenshots/ (ignored by git) for people to look at,
// and the texts are checked in both languages.
func TestScreenshotsAndLanguages(t *testing.T) {
	warnWithoutJapaneseFont(t)
	br := startBrowser(t)
	var seededAt time.Time
	c := startCluster(t, clusterOptions{replicas: 1, seed: func(ctx context.Context, db *pgx.Conn) error {
		seededAt = time.Now()
		return seedBoard(ctx, db)
	}})
	url := c.replicas[0].URL
	dir := screenshotDir(t)

	p := br.open(t, "en", url, tabOptions{acceptLanguage: "en-US,en;q=0.9"})
	p.waitFor("the seeded topics", liveWithin, func(s shown) bool { return len(s.Topics) == len(seeded) })

	// One topic of this browser's own: it has the "you" badge and buttons.
	own := "Trying the board from my browser: my own posts get Edit and Delete."
	p.post(own)
	p.waitFor("its own post", liveWithin, func(s shown) bool { _, ok := s.withComment(own); return ok })
	p.waitTrue("the form to empty", `document.getElementById('comment').value === ''`)

	expectTexts(t, p, "en", map[string]string{
		"#post-button":          "Post",
		"#status .status-text":  "live",
		"#feed-title":           "Topics",
		"li.topic.mine .edit":   "Edit",
		"li.topic.mine .delete": "Delete",
		"li.topic.mine .badge":  "you",
	}, []string{"3 days ago", "5 h ago", "2 h ago", "25 min ago", "4 min ago", "just now", "edited"})
	if got := eval[string](p, `document.getElementById('comment').placeholder`); got != "Say something…" {
		t.Errorf("en: placeholder %q", got)
	}
	shoot(t, p, dir, "en")
	readmeImage(t, filepath.Join(dir, "desktop-en.png"), filepath.Join(dir, "readme.png"))

	// The switch turns every text Japanese, at once, without a reload.
	p.do(chromedp.Click(chromedp.CSS(`#lang [data-lang="ja"]`)))
	expectTexts(t, p, "ja", map[string]string{
		"#post-button":          "投稿",
		"#status .status-text":  "ライブ",
		"#feed-title":           "トピック",
		"li.topic.mine .edit":   "編集",
		"li.topic.mine .delete": "削除",
		"li.topic.mine .badge":  "あなた",
	}, []string{"3日前", "5時間前", "2時間前", "25分前", "4分前", "たった今", "編集済み"})
	if got := eval[string](p, `document.getElementById('comment').placeholder`); got != "なにか書いてみましょう…" {
		t.Errorf("ja: placeholder %q", got)
	}
	shoot(t, p, dir, "ja")

	// The counter, and the page's own check before sending: its message
	// follows the language too.
	before := len(p.read().Topics)
	p.setValue("#comment", strings.Repeat("長", 2001))
	if got := p.text("#counter"); got != "2001 / 2000" {
		t.Errorf("counter reads %q, want 2001 / 2000", got)
	}
	p.do(chromedp.Click(chromedp.ID("post-button")))
	if got := waitText(t, p, "#post-error", func(s string) bool { return s != "" }); got != "コメントが 2001 文字あります。2000 文字以内にしてください。" {
		t.Errorf("ja: error %q", got)
	}
	p.do(chromedp.Click(chromedp.CSS(`#lang [data-lang="en"]`)))
	if got := p.text("#post-error"); got != "Your comment is 2001 characters; at most 2000 are allowed." {
		t.Errorf("en: error %q", got)
	}
	p.do(chromedp.Click(chromedp.CSS(`#lang [data-lang="ja"]`)))
	if n := len(p.read().Topics); n != before {
		t.Errorf("a comment over the limit was posted (%d topics, %d before)", n, before)
	}

	// The choice is remembered.
	p.do(chromedp.Reload())
	p.waitLive()
	if lang := eval[string](p, `document.documentElement.lang`); lang != "ja" {
		t.Errorf("after a reload the page is in %q, want the chosen ja", lang)
	}

	// A browser that prefers Japanese gets it without asking, and can
	// switch to English.
	ja := br.open(t, "ja", url, tabOptions{acceptLanguage: "ja-JP,ja;q=0.9,en;q=0.8"})
	newest := fmt.Sprintf(`#topics li.topic[data-id="%d"] time`, len(seeded))
	firstLabel := ja.text(newest)
	expectTexts(t, ja, "ja", map[string]string{"#post-button": "投稿", "#status .status-text": "ライブ"}, nil)
	ja.do(chromedp.Click(chromedp.CSS(`#lang [data-lang="en"]`)))
	expectTexts(t, ja, "en", map[string]string{"#post-button": "Post", "#status .status-text": "live"}, nil)

	// Times tick: the newest seeded topic was just under a minute old at
	// the start; its label moves on without a reload.
	if firstLabel == "たった今" {
		due := seededAt.Add(time.Minute - seeded[len(seeded)-1].age)
		waitText(t, ja, newest, func(s string) bool { return s == "1 min ago" })
		t.Logf("the time label turned from %q to \"1 min ago\" by itself, %v after it was due",
			firstLabel, time.Since(due).Round(time.Millisecond))
	} else {
		t.Logf("the board took long to start: the label was %q already; tick not observed", firstLabel)
	}

	p.checkClean(nil)
	ja.checkClean(nil)
}

// expectTexts checks the lang attribute, the texts of elements, and that
// the list shows each phrase somewhere.
func expectTexts(t *testing.T, p *tab, lang string, texts map[string]string, phrases []string) {
	t.Helper()
	if got := eval[string](p, `document.documentElement.lang`); got != lang {
		t.Errorf("%s: <html lang=%q>, want %q", p.name, got, lang)
	}
	if got := eval[string](p, `document.querySelector('#lang [aria-pressed="true"]').dataset.lang`); got != lang {
		t.Errorf("%s: the language switch shows %q pressed, want %q", p.name, got, lang)
	}
	for sel, want := range texts {
		if got := strings.TrimSpace(p.text(sel)); got != want {
			t.Errorf("%s: %s reads %q, want %q", p.name, sel, got, want)
		}
	}
	list := p.text("#topics")
	for _, phrase := range phrases {
		if !strings.Contains(list, phrase) {
			t.Errorf("%s: the list does not show %q", p.name, phrase)
		}
	}
}

// shoot saves the page at desktop (1280×800) and phone (390×844) size.
func shoot(t *testing.T, p *tab, dir, lang string) {
	t.Helper()
	// A still page: no focus ring, no arrival highlight half-way.
	eval[chromedp.Void](p, `document.activeElement && document.activeElement.blur()`)
	p.waitTrue("highlights to fade", `!document.querySelector('#topics .new')`)
	p.do(chromedp.EmulateViewport(1280, 800))
	p.screenshot(filepath.Join(dir, "desktop-"+lang+".png"))
	p.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
	if w := eval[int](p, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("%s: the page is %d px wide on a 390 px phone screen (sideways scrolling)", p.name, w)
	}
	p.screenshot(filepath.Join(dir, "phone-"+lang+".png"))
	p.do(chromedp.EmulateViewport(1280, 800))
}

// screenshotDir is screenshots/ at the top of the repository.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "screenshots"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			t.Logf("screenshots in %s", dir)
		}
	})
	return dir
}

// warnWithoutJapaneseFont notes when the Japanese screenshots will show
// empty boxes: the page brings no fonts, it uses the system's.
func warnWithoutJapaneseFont(t *testing.T) {
	out, err := exec.Command("fc-list", ":lang=ja", "family").Output()
	if err != nil || len(strings.TrimSpace(string(out))) == 0 {
		t.Logf("no Japanese font installed: the Japanese screenshots will show boxes (apt-get install -y fonts-vlgothic)")
	}
}

// readmeImage writes the picture for the README: the desktop screenshot cut
// to the page's column (the rest is background, and a README shows images
// about 800 px wide) and compressed hard. Refresh the committed one with
// cp screenshots/readme.png docs/screenshot.png.
func readmeImage(t *testing.T, from, to string) {
	t.Helper()
	f, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	const width = 800
	b := img.Bounds()
	left := b.Min.X + (b.Dx()-width)/2
	sub, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if !ok || b.Dx() < width {
		t.Fatalf("%s: cannot crop a %T of %v", from, img, b)
	}
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(out, sub.SubImage(image.Rect(left, b.Min.Y, left+width, b.Max.Y))); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
