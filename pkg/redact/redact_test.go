package redact

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"sqlite:bbs.db", "sqlite:bbs.db"},
		{"postgres://bbs@db:5432/bbs?sslmode=disable", "postgres://bbs@db:5432/bbs?sslmode=disable"},
		{"postgres://bbs:pw@db:5432/bbs?sslmode=disable", "postgres://bbs:***@db:5432/bbs?sslmode=disable"},
		{"postgres://bbs@db/bbs?sslmode=disable&password=pw&sslpassword=x", "postgres://bbs@db/bbs?sslmode=disable&password=***&sslpassword=***"},
		{"redis://:pw@redis:6379/0", "redis://:***@redis:6379/0"},
		{"redis://default:p%40ss@redis:6379/0?client_name=bbs", "redis://default:***@redis:6379/0?client_name=bbs"},
		{"redis+sentinel://s1:26379?master_name=m&sentinel_password=spw&password=pwd&addr=s2:26379",
			"redis+sentinel://s1:26379?master_name=m&sentinel_password=***&password=***&addr=s2:26379"},
		{"redis://h/0?Auth_Token=tok&Client_Secret=cse", "redis://h/0?Auth_Token=***&Client_Secret=***"},
		// Unescaped characters in the password: the parser would read part
		// of it as a host, a path or a fragment.
		{"redis://:ab#cd@redis:6379/0", "redis://:***@redis:6379/0"},
		{"redis://u:ab/cd@redis:6379/0", "redis://u:***@redis:6379/0"},
		{"redis://u:ab?cd@redis:6379/0", "redis://u:***@redis:6379/0"},
		{"redis://u:a@b@redis:6379/0", "redis://u:***@redis:6379/0"},
		{"redis://:123#x@redis", "redis://:***@redis"},
		{"postgres://u:p w@db/x?password='q r'", "postgres://u:***@db/x?password=***"},
		// key=value DSNs, libpq style.
		{"host=db user=bbs password=pw dbname=bbs", "host=db user=bbs password=*** dbname=bbs"},
		{"host=db password = 'p w' dbname=bbs", "host=db password = *** dbname=bbs"},
		// A password pasted on its own.
		{"hunter2", "***"},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		for _, s := range Secrets(tc.in) {
			if strings.Contains(URL(tc.in), s) {
				t.Errorf("URL(%q) = %q still shows the secret %q", tc.in, URL(tc.in), s)
			}
		}
	}
}

func TestSecrets(t *testing.T) {
	got := Secrets("redis+sentinel://u:p%40ss@s1:26379?sentinel_password=sp&password=qq")
	for _, want := range []string{"p%40ss", "p@ss", "sp", "qq"} {
		if !strings.Contains(strings.Join(got, "\n"), want) {
			t.Errorf("Secrets: %q lacks %q", got, want)
		}
	}
	if s := Secrets("postgres://bbs@db/bbs?sslmode=disable"); len(s) != 0 {
		t.Errorf("Secrets of a URL without credentials: %q", s)
	}
}

// TestTextScrubsParserErrors: what net/url says about a bad URL quotes it
// and, for a bad port, a piece of the password.
func TestTextScrubsParserErrors(t *testing.T) {
	for _, raw := range []string{
		"redis://u:s3cr/et@redis:6379/0",
		"redis://:s3cr#et@redis:6379/0",
		"postgres://u:s3cret@db/x?password=t0psecret&sslmode=bogus",
	} {
		_, err := url.Parse(raw)
		if err == nil {
			err = fmt.Errorf("cannot parse `%s`: failed", raw)
		}
		msg := Error(fmt.Errorf("wrapped: %w", err), raw).Error()
		for _, s := range []string{"s3cr", "t0psecret"} {
			if strings.Contains(msg, s) {
				t.Errorf("%q: message %q shows %q", raw, msg, s)
			}
		}
		if !errors.Is(Error(err, raw), err) {
			t.Error("Error must keep the original for errors.Is")
		}
	}
}

func TestURLBadScheme(t *testing.T) {
	if got := URL("s3cret@redis://host:6379"); got != Mask {
		t.Errorf("URL with a password before the scheme = %q, want it masked whole", got)
	}
}

func TestURLWithoutSlashes(t *testing.T) {
	if got, want := URL("redis:user:pw1234@host:6379"), "redis:***@host:6379"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
	if got := Text("bad redis:user:pw1234@host:6379 here", "redis:user:pw1234@host:6379"); strings.Contains(got, "pw1234") {
		t.Errorf("Text = %q", got)
	}
}
