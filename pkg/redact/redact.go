// Package redact masks the credentials a connection string carries (a
// URL's password, and any parameter whose name contains "password",
// "secret" or "token", in a query or in a key=value DSN) so that it can be
// logged or returned in an error. It also scrubs them from text that may
// quote the connection string, such as a parser's error.
//
// A connection string that does not parse cleanly is masked more, not
// less: everything between "://" and the last "@" but the user name is
// hidden, because a password with an unescaped '#', '/', '?' or '@' is the
// usual reason a URL does not parse, and a parser then reads part of the
// password as the host, the path or the fragment.
package redact

import (
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Mask replaces every credential.
const Mask = "***"

// param finds a credential parameter and its value: in a URL's query
// (after ? or &) or in a key=value DSN (after a space or at the start),
// with libpq's optional spaces around '=' and single-quoted values.
var param = regexp.MustCompile(`(?i)((?:^|[?&;\s])[^=&?#;\s]*(?:password|secret|token)[^=&?#;\s]*\s*=\s*)('(?:[^'\\]|\\.)*'|[^&#;\s]*)`)

// schemeOnly is a connection string of the form scheme:rest without
// "//" (sqlite:bbs.db), which carries no user information.
var schemeOnly = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:[^/]`)

// validScheme is a URL scheme (RFC 3986).
var validScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

// sensitive reports whether a parameter's name names a credential.
func sensitive(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "password") || strings.Contains(n, "secret") || strings.Contains(n, "token")
}

// URL returns raw with every credential masked: the password of its user
// information and the value of every credential parameter. A string that
// is neither a URL, nor scheme:path, nor a key=value DSN (a password
// pasted on its own, say) is masked whole.
func URL(raw string) string {
	if raw == "" {
		return ""
	}
	if u, ok := parseClean(raw); ok {
		return structured(u)
	}
	return lenient(raw)
}

// parseClean parses raw as a URL when nothing suggests that the parse
// misread it: a '#' (a fragment is never part of a connection string, but
// an unescaped '#' in a password makes one), or an '@' left in the path or
// the query (the rest of a password with an unescaped '/' or '?').
func parseClean(raw string) (*url.URL, bool) {
	if !strings.Contains(raw, "://") || strings.Contains(raw, "#") {
		return nil, false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || strings.Contains(u.Path, "@") || strings.Contains(u.RawQuery, "@") {
		return nil, false
	}
	return u, true
}

func structured(u *url.URL) string {
	hasPassword := false
	if u.User != nil {
		_, hasPassword = u.User.Password()
		// net/url would escape the mask; it is put in by hand below.
		u.User = url.User(u.User.Username())
	}
	u.RawQuery = maskQuery(u.RawQuery)
	s := u.String()
	if hasPassword {
		prefix := u.Scheme + "://"
		rest := strings.TrimPrefix(s, prefix)
		if at := strings.Index(rest, "@"); at >= 0 {
			s = prefix + rest[:at] + ":" + Mask + rest[at:]
		}
	}
	return s
}

// maskQuery masks credential parameters in a raw query, leaving the rest
// (order, encoding) as it was written.
func maskQuery(q string) string {
	if q == "" {
		return q
	}
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, _, hasValue := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if sensitive(name) && hasValue {
			parts[i] = k + "=" + Mask
		}
	}
	return strings.Join(parts, "&")
}

func lenient(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if ok && !validScheme.MatchString(scheme) {
		return Mask
	}
	if !ok {
		if !schemeOnly.MatchString(raw) && !strings.Contains(raw, "=") {
			return Mask
		}
		if at := strings.LastIndex(raw, "@"); at >= 0 && schemeOnly.MatchString(raw) {
			// scheme:user:password@host, the "//" forgotten.
			scheme, _, _ := strings.Cut(raw, ":")
			raw = scheme + ":" + Mask + raw[at:]
		}
		return param.ReplaceAllString(raw, "${1}"+Mask)
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		masked := Mask
		if user, _, hasColon := strings.Cut(rest[:at], ":"); hasColon {
			masked = user + ":" + Mask
		}
		rest = masked + rest[at:]
	}
	return param.ReplaceAllString(scheme+"://"+rest, "${1}"+Mask)
}

// Secrets returns the credentials raw carries, each as written and, when
// it differs, percent-decoded.
func Secrets(raw string) []string {
	var out []string
	add := func(s string) {
		s = strings.Trim(s, "'")
		if s == "" || s == Mask {
			return
		}
		out = append(out, s)
		if d, err := url.QueryUnescape(s); err == nil && d != s {
			out = append(out, d)
		}
	}
	if raw == "" {
		return nil
	}
	if u, ok := parseClean(raw); ok {
		if pw, has := u.User.Password(); has {
			add(pw)
			if ui := rawUserinfo(raw); ui != "" {
				_, p, _ := strings.Cut(ui, ":")
				add(p)
			}
		}
	} else if scheme, rest, ok := strings.Cut(raw, "://"); ok {
		if !validScheme.MatchString(scheme) {
			add(raw)
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if _, pw, hasColon := strings.Cut(rest[:at], ":"); hasColon {
				add(pw)
			} else {
				add(rest[:at])
			}
		}
	} else if !schemeOnly.MatchString(raw) && !strings.Contains(raw, "=") {
		add(raw)
	} else if at := strings.LastIndex(raw, "@"); at >= 0 && schemeOnly.MatchString(raw) {
		_, userinfo, _ := strings.Cut(raw[:at], ":")
		add(userinfo)
		if _, pw, ok := strings.Cut(userinfo, ":"); ok {
			add(pw)
		}
	}
	for _, m := range param.FindAllStringSubmatch(raw, -1) {
		add(m[2])
	}
	slices.Sort(out)
	out = slices.Compact(out)
	// Longest first, so a secret that contains another is masked whole.
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// rawUserinfo is the user information of a URL as written.
func rawUserinfo(raw string) string {
	_, rest, _ := strings.Cut(raw, "://")
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		return rest[:at]
	}
	return ""
}

// Text returns text with every occurrence of each connection string in
// raws replaced by its masked form, and every credential they carry
// masked wherever else it appears.
func Text(text string, raws ...string) string {
	var secrets []string
	for _, raw := range raws {
		if raw == "" {
			continue
		}
		text = strings.ReplaceAll(text, raw, URL(raw))
		secrets = append(secrets, Secrets(raw)...)
	}
	slices.SortStableFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		text = strings.ReplaceAll(text, s, Mask)
	}
	return text
}

// Error returns err with its message scrubbed by Text; errors.Is and
// errors.As still see err. nil stays nil.
func Error(err error, raws ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	// net/url's message quotes the URL as far as it read it (up to a '#',
	// say) and, for a bad port or escape, a piece of it: none of that is
	// shown.
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = strings.ReplaceAll(msg, ue.Error(), ue.Op+": not a valid URL (percent-encode reserved characters such as @ : / ? # in the user name and password)")
	}
	msg = Text(msg, raws...)
	if msg == err.Error() {
		return err
	}
	return &redacted{err: err, msg: msg}
}

type redacted struct {
	err error
	msg string
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }
