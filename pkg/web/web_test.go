package web

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	// modules are the page's script: main.js and what it imports.
	modules    = []string{"main.js", "board.js", "dom.js", "http.js", "i18n.js", "items.js", "list.js", "post.js", "render.js", "share.js", "state.js", "storage.js", "stream.js", "time.js"}
	assetNames = append([]string{"index.html", "app.css", "favicon.svg"}, modules...)
)

func readAsset(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(Assets(), name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	if len(b) == 0 {
		t.Fatalf("%s is empty", name)
	}
	return string(b)
}

// script is every module of the page's script, one after the other.
func script(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, name := range modules {
		b.WriteString(readAsset(t, name))
	}
	return b.String()
}

var importRE = regexp.MustCompile(`(?m)^import (?:\{[^}]*\} from )?'([^']*)';$`)

// The page loads main.js as a module; every module is imported by one and
// imports only the others, by a relative path (nothing from elsewhere, no
// build step), and the CSP allows them: script-src 'self'.
func TestModulesImportEachOther(t *testing.T) {
	imported := map[string]bool{"main.js": true}
	for _, name := range modules {
		for _, m := range importRE.FindAllStringSubmatch(readAsset(t, name), -1) {
			target, ok := strings.CutPrefix(m[1], "./")
			if !ok || !slices.Contains(modules, target) {
				t.Errorf("%s imports %q: want ./ and one of %v", name, m[1], modules)
			}
			imported[target] = true
		}
	}
	html := readAsset(t, "index.html")
	for _, name := range modules {
		if !imported[name] {
			t.Errorf("%s is embedded but no module imports it", name)
		}
		if preload := `<link rel="modulepreload" href="/static/` + name + `">`; name != "main.js" && !strings.Contains(html, preload) {
			t.Errorf("index.html lacks %s", preload)
		}
	}
}

func TestAssetsContainsFiles(t *testing.T) {
	got := map[string]bool{}
	err := fs.WalkDir(Assets(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			got[path] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range assetNames {
		if !got[name] {
			t.Errorf("Assets() lacks %s (have %v)", name, got)
		}
		readAsset(t, name)
	}
	if len(got) != len(assetNames) {
		t.Errorf("Assets() has %d files, want %d: %v", len(got), len(assetNames), got)
	}
}

func TestIndexReferencesAssets(t *testing.T) {
	html := readAsset(t, "index.html")
	for _, want := range []string{
		`<script type="module" src="/static/main.js"></script>`,
		`<meta name="bbs-heartbeat" content="15000">`,
		`<link rel="stylesheet" href="/static/app.css">`,
		`href="/static/favicon.svg"`,
		`method="post" action="/api/topics"`,
		`name="comment"`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
}

// The browser tests drive the page through these ids.
func TestIndexHasStableIDs(t *testing.T) {
	html := readAsset(t, "index.html")
	for _, id := range []string{"post-form", "comment", "post-button", "post-error", "counter", "status", "topics", "lang", "announcer"} {
		if !strings.Contains(html, `id="`+id+`"`) {
			t.Errorf("index.html lacks id=%q", id)
		}
	}
	js := script(t)
	for _, class := range []string{"'topic'", "'comment'", " edit'", " delete'", "'edit-text'", " save'", " cancel'", " confirm-delete'", " keep'"} {
		if !strings.Contains(js, class) {
			t.Errorf("the script lacks class name %s", class)
		}
	}
}

var (
	urlRE      = regexp.MustCompile(`(?i)https?://[^\s"'<>()]*`)
	protoRelRE = regexp.MustCompile(`(?i)(?:src|href|url)\s*[=(]\s*["']?//`)
)

func TestNoExternalURLs(t *testing.T) {
	const svgNS = "http://www.w3.org/2000/svg"
	for _, name := range assetNames {
		src := readAsset(t, name)
		if name == "favicon.svg" {
			src = strings.Replace(src, `xmlns="`+svgNS+`"`, "", 1)
		}
		for _, u := range urlRE.FindAllString(src, -1) {
			t.Errorf("%s references an external URL: %s", name, u)
		}
		if m := protoRelRE.FindString(src); m != "" {
			t.Errorf("%s has a protocol-relative URL: %q", name, m)
		}
	}
}

var (
	scriptRE      = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script\s*>`)
	eventAttrRE   = regexp.MustCompile(`(?i)<[^>]*\son[a-z]+\s*=`)
	styleAttrRE   = regexp.MustCompile(`(?i)<[^>]*\sstyle\s*=`)
	styleTagRE    = regexp.MustCompile(`(?i)<style\b`)
	markupSources = []string{"index.html", "favicon.svg"}
)

// The page is served with a CSP that forbids inline scripts and styles.
func TestNoInlineScriptOrStyle(t *testing.T) {
	for _, name := range markupSources {
		src := readAsset(t, name)
		for _, m := range scriptRE.FindAllStringSubmatch(src, -1) {
			if strings.TrimSpace(m[2]) != "" {
				t.Errorf("%s has an inline <script>: %.60q", name, m[0])
			}
			if !strings.Contains(m[1], "src=") {
				t.Errorf("%s has a <script> without src: %q", name, m[0])
			}
		}
		if m := eventAttrRE.FindString(src); m != "" {
			t.Errorf("%s has an inline event handler attribute: %q", name, m)
		}
		if m := styleAttrRE.FindString(src); m != "" {
			t.Errorf("%s has a style attribute: %q", name, m)
		}
		if styleTagRE.MatchString(src) {
			t.Errorf("%s has an inline <style> element", name)
		}
	}
}

// User text must reach the page only as text, never parsed as markup, and
// the script must not create what the CSP would block.
func TestScriptAvoidsHTMLInjection(t *testing.T) {
	js := script(t)
	for _, bad := range []string{
		".innerHTML",
		".outerHTML",
		"insertAdjacentHTML",
		"document.write",
		"eval(",
		"new Function",
		"setAttribute('style'",
		`setAttribute("style"`,
		"setAttribute('on",
		`setAttribute("on`,
	} {
		if strings.Contains(js, bad) {
			t.Errorf("the script uses %q", bad)
		}
	}
	if !strings.Contains(js, "textContent") {
		t.Error("the script never uses textContent")
	}
}

var (
	// The dictionaries in i18n.js: `  en: {` ... `  },`, one entry per
	// line, `    key: 'text',`.
	messagesRE = regexp.MustCompile(`(?ms)^  (\w+): \{\n(.*?)^  \},`)
	entryRE    = regexp.MustCompile(`^\s+(\w+): '((?:[^'\\]|\\.)*)',$`)
	paramRE    = regexp.MustCompile(`\{\w+\}`)
	// Keys the script asks for: t('key'...) and the key tables.
	usedKeyRE  = regexp.MustCompile(`\bt\(\s*'(\w+)'|: '((?:err|status)[A-Z]\w*)'|'(hint(?:Ctrl|Meta))'`)
	i18nAttrRE = regexp.MustCompile(`data-i18n(?:-placeholder|-aria-label)?="(\w+)"`)
)

// messages parses the dictionaries of i18n.js: language -> key -> text.
func messages(t *testing.T) map[string]map[string]string {
	t.Helper()
	js := readAsset(t, "i18n.js")
	start := strings.Index(js, "const MESSAGES = {")
	end := strings.Index(js, "const LANGUAGES")
	if start < 0 || end < start {
		t.Fatal("i18n.js: no MESSAGES dictionary")
	}
	out := map[string]map[string]string{}
	for _, m := range messagesRE.FindAllStringSubmatch(js[start:end], -1) {
		dict := map[string]string{}
		for _, line := range strings.Split(strings.TrimRight(m[2], "\n"), "\n") {
			if trimmed := strings.TrimSpace(line); trimmed == "" || strings.HasPrefix(trimmed, "//") {
				continue
			}
			e := entryRE.FindStringSubmatch(line)
			if e == nil {
				t.Fatalf("i18n.js: %s: unreadable entry %q (one `key: 'text',` per line)", m[1], line)
			}
			if _, dup := dict[e[1]]; dup {
				t.Errorf("i18n.js: %s: %s given twice", m[1], e[1])
			}
			dict[e[1]] = e[2]
		}
		out[m[1]] = dict
	}
	return out
}

// Every language has every text, with the same {placeholders}, and each
// is really translated.
func TestMessagesComplete(t *testing.T) {
	all := messages(t)
	en := all["en"]
	if len(en) == 0 || len(all["ja"]) == 0 {
		t.Fatalf("i18n.js: want English and Japanese texts, have %v", len(all))
	}
	for lang, dict := range all {
		for key, text := range en {
			other, ok := dict[key]
			switch {
			case !ok:
				t.Errorf("%s lacks %s (en: %q)", lang, key, text)
			case strings.TrimSpace(other) == "":
				t.Errorf("%s: %s is empty", lang, key)
			case lang != "en" && other == text:
				t.Errorf("%s: %s is not translated: %q", lang, key, other)
			}
			want, got := paramRE.FindAllString(text, -1), paramRE.FindAllString(other, -1)
			slices.Sort(want)
			slices.Sort(got)
			if ok && !slices.Equal(want, got) {
				t.Errorf("%s: %s has placeholders %v, en has %v", lang, key, got, want)
			}
		}
		for key := range dict {
			if _, ok := en[key]; !ok {
				t.Errorf("%s has %s, which en lacks", lang, key)
			}
		}
	}
}

// Every text the page asks for exists.
func TestMessagesUsedExist(t *testing.T) {
	en := messages(t)["en"]
	js := script(t)
	used := 0
	for _, m := range usedKeyRE.FindAllStringSubmatch(js, -1) {
		key := m[1] + m[2] + m[3]
		used++
		if _, ok := en[key]; !ok {
			t.Errorf("the script uses text %q, which MESSAGES lacks", key)
		}
	}
	for _, m := range i18nAttrRE.FindAllStringSubmatch(readAsset(t, "index.html"), -1) {
		used++
		if _, ok := en[m[1]]; !ok {
			t.Errorf("index.html uses text %q, which MESSAGES lacks", m[1])
		}
	}
	if used < len(en)/2 {
		t.Errorf("found only %d uses of %d texts: has the way texts are looked up changed?", used, len(en))
	}
}
