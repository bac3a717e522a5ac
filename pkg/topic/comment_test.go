package topic_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/bbsboard/bbs/pkg/topic"
)

func TestNormalizeComment(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		ok             bool
	}{
		{"plain", "hello", "hello", true},
		{"trimmed", "  \n\thello \r\n", "hello", true},
		{"crlf folded", "a\r\nb", "a\nb", true},
		{"tab and newline kept", "a\tb\nc", "a\tb\nc", true},
		{"max code points", strings.Repeat("語", 2000), strings.Repeat("語", 2000), true},
		{"limit counted after trim", " " + strings.Repeat("x", 2000) + "\n", strings.Repeat("x", 2000), true},
		{"empty", "", "", false},
		{"only space", " \r\n\t ", "", false},
		{"too long", strings.Repeat("語", 2001), "", false},
		{"NUL", "a\x00b", "", false},
		{"escape", "\x1b[31mred", "", false},
		{"lone CR", "a\rb", "", false},
		{"DEL", "a\x7fb", "", false},
		{"C1 control", "a\u0085b", "", false},
		{"invalid UTF-8", "a\xffb", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := topic.NormalizeComment(tc.in)
			if tc.ok != (err == nil) || got != tc.want {
				t.Fatalf("NormalizeComment(%q) = %q, %v", tc.in, got, err)
			}
			if err != nil && !errors.Is(err, topic.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
		})
	}
}

// FuzzNormalizeComment: whatever comes in, what is accepted obeys every
// rule of README's API section (1 to 2,000 code points, no control
// characters but newline and tab, trimmed, CRLF folded), and normalising it again changes nothing.
func FuzzNormalizeComment(f *testing.F) {
	for _, s := range []string{"hi", " a\r\nb ", "\x00", "\xff", strings.Repeat("x", 2001), "\n\ndata: x", "<script>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := topic.NormalizeComment(in)
		if err != nil {
			return
		}
		n := utf8.RuneCountInString(out)
		if !utf8.ValidString(out) || n < 1 || n > topic.MaxCommentRunes || out != strings.TrimSpace(out) || strings.Contains(out, "\r") {
			t.Fatalf("accepted %q as %q", in, out)
		}
		for _, r := range out {
			if unicode.Is(unicode.Cc, r) && r != '\n' && r != '\t' {
				t.Fatalf("accepted control %U in %q", r, out)
			}
		}
		if again, err := topic.NormalizeComment(out); err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q, %v", out, again, err)
		}
	})
}

func TestAuthorizer(t *testing.T) {
	tok, hash := topic.NewToken()
	other, _ := topic.NewToken()
	a := topic.NewAuthorizer("admin")
	for _, tc := range []struct {
		token string
		want  error
	}{
		{tok, nil}, {"admin", nil}, {"", topic.ErrUnauthorized}, {other, topic.ErrForbidden}, {"Admin", topic.ErrForbidden},
	} {
		if err := a.Check(tc.token, hash); !errors.Is(err, tc.want) && err != tc.want {
			t.Errorf("Check(%q) = %v, want %v", tc.token, err, tc.want)
		}
	}
	if err := topic.NewAuthorizer("").Check("", hash); !errors.Is(err, topic.ErrUnauthorized) {
		t.Errorf("no admin token configured, empty token: %v", err)
	}
	if topic.NewAuthorizer("").IsAdmin("") {
		t.Error("empty token is admin when no admin token is set")
	}
}
