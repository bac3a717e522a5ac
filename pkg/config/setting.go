package config

import (
	"log/slog"
	"strings"
)

// Setting is one environment variable the server reads. Settings lists
// them all, and everything that names a variable reads that list: Load,
// the start-up log line, `bbs help` and `bbs config`, and the tests that
// hold README's table, docker-compose.yml and k8s/ to it.
type Setting struct {
	Name    string // the variable; the Config field it fills is its CamelCase (SSE_HEARTBEAT: SSEHeartbeat)
	Default string // what the variable unset means, as README's table says it
	Help    string // one line, for `bbs help`
	Secret  bool   // a credential: masked wherever the value is shown

	logKey string                          // its key in the start-up line
	load   func(c *Config, v string) error // v trimmed, "" when unset
	format func(c Config) string           // the value in c, as people read it
	log    func(c Config) slog.Value
}

// Value is the setting's value in c as `bbs config` shows it, masked when
// the setting is a secret.
func (s Setting) Value(c Config) string { return s.format(c) }

// setting is a variable of kind k with a fixed default, read into the
// field of Config that field points to.
func setting[T any](name string, k kind[T], def T, field func(*Config) *T, help string) Setting {
	return derived(name, k, k.format(def), func(Config) T { return def }, field, help)
}

// derived is a variable whose default depends on the settings before it
// in the table (c holds them); shown says so for README and `bbs help`.
func derived[T any](name string, k kind[T], shown string, def func(c Config) T, field func(*Config) *T, help string) Setting {
	log := k.log
	if log == nil {
		log = func(v T) slog.Value { return slog.StringValue(k.format(v)) }
	}
	return Setting{
		Name: name, Default: shown, Help: help, Secret: k.secret,
		logKey: strings.ToLower(name),
		load: func(c *Config, v string) error {
			if v == "" {
				*field(c) = def(*c)
				return nil
			}
			x, err := k.parse(v)
			*field(c) = x
			return err
		},
		format: func(c Config) string { return k.format(*field(&c)) },
		log:    func(c Config) slog.Value { return log(*field(&c)) },
	}
}

// shown replaces the default README and `bbs help` show: for a variable
// whose default is not a value one would set (unset, the hostname).
func (s Setting) shown(text string) Setting {
	s.Default = text
	return s
}

// loggedAs keeps the key a setting had in the start-up line before the
// line was made from this table, for the log queries that look for it.
func (s Setting) loggedAs(key string) Setting {
	s.logKey = key
	return s
}
