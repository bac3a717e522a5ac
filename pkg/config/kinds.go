package config

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/bbsboard/bbs/pkg/redact"
)

// kind is how a value is read from a variable and shown back; settings of
// one kind read, refuse and show alike.
type kind[T any] struct {
	parse  func(v string) (T, error) // v is set, and trimmed
	format func(T) string            // for people: defaults, `bbs config`
	log    func(T) slog.Value        // the start-up line; nil: format's string
	secret bool                      // format masks the credentials
}

// text is a string taken as given; empty is what an empty value means.
func text(empty string) kind[string] {
	return kind[string]{
		parse:  func(v string) (string, error) { return v, nil },
		format: func(v string) string { return cmp.Or(v, empty) },
	}
}

// connURL is a connection string whose credentials are masked where it is
// shown (pkg/redact).
func connURL(empty string) kind[string] {
	k := text(empty)
	k.format = func(v string) string {
		if v == "" {
			return empty
		}
		return redact.URL(v)
	}
	k.secret = true
	return k
}

// token is a credential, never shown.
func token(empty string) kind[string] {
	k := connURL(empty)
	k.format = func(v string) string {
		if v == "" {
			return empty
		}
		return redact.Mask
	}
	return k
}

// addrOrOff is a listen address, or off (case-insensitive) for none.
func addrOrOff() kind[string] {
	return kind[string]{
		parse: func(v string) (string, error) {
			if strings.EqualFold(v, "off") {
				return "", nil
			}
			return v, nil
		},
		format: func(v string) string { return cmp.Or(v, "off") },
	}
}

// count is a non-negative integer.
func count() kind[int] {
	return kind[int]{
		parse: func(v string) (int, error) {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return n, fmt.Errorf("%q is not a non-negative integer", v)
			}
			return n, nil
		},
		format: strconv.Itoa,
		log:    slog.IntValue,
	}
}

// perMinute is a rate: "30" or "30/min".
func perMinute() kind[int] {
	k := count()
	k.parse = func(v string) (int, error) {
		v = strings.TrimSuffix(v, "/min")
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return n, fmt.Errorf("%q is not a rate like 30/min", v)
		}
		return n, nil
	}
	return k
}

// duration is a non-negative time.Duration such as 15s.
func duration() kind[time.Duration] {
	return kind[time.Duration]{
		parse: func(v string) (time.Duration, error) {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return d, fmt.Errorf("%q is not a duration like 15s", v)
			}
			return d, nil
		},
		format: time.Duration.String,
		log:    slog.DurationValue,
	}
}

// onOff is a switch.
func onOff() kind[bool] {
	return kind[bool]{
		parse: func(v string) (bool, error) {
			switch v = strings.ToLower(v); v {
			case "1", "true", "on", "yes":
				return true, nil
			case "0", "false", "off", "no":
				return false, nil
			default:
				return false, fmt.Errorf("%q is not on or off", v)
			}
		},
		format: func(b bool) string {
			if b {
				return "on"
			}
			return "off"
		},
		log: slog.BoolValue,
	}
}

// prefixes is a list of CIDRs or addresses, separated by commas or
// spaces; none is the empty list, said explicitly. Each entry that does
// not parse is an error of its own.
func prefixes() kind[[]netip.Prefix] {
	strs := func(ps []netip.Prefix) []string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = p.String()
		}
		return out
	}
	return kind[[]netip.Prefix]{
		parse: func(v string) ([]netip.Prefix, error) {
			if strings.EqualFold(v, "none") {
				return nil, nil
			}
			var out []netip.Prefix
			var errs []error
			for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
				pf, err := netip.ParsePrefix(f)
				if err != nil {
					addr, aerr := netip.ParseAddr(f)
					if aerr != nil {
						errs = append(errs, fmt.Errorf("%q is not a CIDR or address", f))
						continue
					}
					pf = netip.PrefixFrom(addr, addr.BitLen())
				}
				out = append(out, pf)
			}
			return out, errors.Join(errs...)
		},
		format: func(ps []netip.Prefix) string { return cmp.Or(strings.Join(strs(ps), ","), "none") },
		log:    func(ps []netip.Prefix) slog.Value { return slog.AnyValue(strs(ps)) },
	}
}

// level is a log level: debug, info, warn, error (slog's names).
func level() kind[slog.Level] {
	return kind[slog.Level]{
		parse: func(v string) (slog.Level, error) {
			var l slog.Level
			err := l.UnmarshalText([]byte(v))
			return l, err
		},
		format: func(l slog.Level) string { return strings.ToLower(l.String()) },
		log:    func(l slog.Level) slog.Value { return slog.StringValue(l.String()) },
	}
}
