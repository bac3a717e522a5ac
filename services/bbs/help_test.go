package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/bbsboard/bbs/pkg/config"
)

// TestHelpListsEverySetting: `bbs help` (and -h, --help) names every
// command and every setting with its default and meaning, from the table.
func TestHelpListsEverySetting(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"help", "-h", "--help"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{arg}, env(nil), &out); err != nil {
			t.Fatalf("bbs %s: %v", arg, err)
		}
		for _, cmd := range []string{"serve", "migrate", "healthcheck", "config", "version", "help"} {
			if !strings.Contains(out.String(), "\n  "+cmd+" ") {
				t.Errorf("bbs %s does not list the command %s:\n%s", arg, cmd, out.String())
			}
		}
		for _, s := range config.Settings() {
			name := s.Name
			if s.Secret {
				name += " (secret: shown masked)"
			}
			if !strings.Contains(out.String(), "\n  "+name+"\n      "+s.Help+"\n      default: "+s.Default+"\n") {
				t.Errorf("bbs %s: %s, its help or default %q missing:\n%s", arg, s.Name, s.Default, out.String())
			}
		}
	}
	err := run(context.Background(), []string{"serv"}, env(nil), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `"serv"`) || !strings.Contains(err.Error(), "bbs help") {
		t.Errorf("bbs serv: %v; want an error naming it and pointing to bbs help", err)
	}
}

// TestConfigShowsTheEffectiveSettings: `bbs config` prints every setting
// as a replica would run with it (defaults filled in, secrets masked),
// and refuses what the server would refuse, with the same message.
func TestConfigShowsTheEffectiveSettings(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := run(context.Background(), []string{"config"}, env(map[string]string{
		"DATABASE_URL":  "postgres://bbs:PgSecret1@db:5432/bbs?password=PgSecret2",
		"REDIS_URL":     "redis://:RedisSecret1@redis:6379/0",
		"ADMIN_TOKEN":   "AdminSecret1",
		"SSE_HEARTBEAT": "3s",
		"WRITE_RATE":    "12/min",
	}), &out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(config.Settings()) {
		t.Fatalf("%d lines for %d settings:\n%s", len(lines), len(config.Settings()), out.String())
	}
	want := map[string][2]string{
		"DATABASE_URL":  {"postgres://bbs:***@db:5432/bbs?password=***", "set"},
		"REDIS_URL":     {"redis://:***@redis:6379/0", "set"},
		"ADMIN_TOKEN":   {"***", "set"},
		"SSE_HEARTBEAT": {"3s", "set"},
		"WRITE_RATE":    {"12", "set"},
		"DRAIN_DELAY":   {"5s", "default"}, // with REDIS_URL
		"HTTP_ADDR":     {":8080", "default"},
		"PPROF":         {"off", "default"},
	}
	for i, s := range config.Settings() {
		f := strings.Fields(lines[i])
		if len(f) != 3 || f[0] != s.Name {
			t.Errorf("line %d %q: want %s, its value, set or default", i, lines[i], s.Name)
			continue
		}
		if w, ok := want[s.Name]; ok && (f[1] != w[0] || f[2] != w[1]) {
			t.Errorf("%s: %q %q, want %q %q", s.Name, f[1], f[2], w[0], w[1])
		}
	}
	for _, secret := range []string{"PgSecret1", "PgSecret2", "RedisSecret1", "AdminSecret1"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("bbs config shows %s:\n%s", secret, out.String())
		}
	}

	err = run(context.Background(), []string{"config"}, env(map[string]string{
		"SNAPSHOT_LIMIT": "0",
		"DATABASE_URL":   "postgres://bbs:PgSecret1@db:5432/bbs?password=PgSecret2",
	}), &bytes.Buffer{})
	if err == nil || err.Error() != "configuration: SNAPSHOT_LIMIT: must be 1..500" {
		t.Errorf("SNAPSHOT_LIMIT=0: %v, want the server's own refusal", err)
	}
}
