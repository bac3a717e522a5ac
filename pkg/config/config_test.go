package config

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
)

func load(t *testing.T, env map[string]string) (Config, error) {
	t.Helper()
	return Load(func(k string) string { return env[k] })
}

// TestLogValueMasksEverySecret: the start-up log line names every setting,
// and no credential: not a URL's password, not a password, secret or token
// in a query string, not the admin token. Before, query parameters were
// printed as given and several settings were missing.
func TestLogValueMasksEverySecret(t *testing.T) {
	c, err := load(t, map[string]string{
		"DATABASE_URL": "postgres://bbs:PgUserinfo1@db:5432/bbs?sslmode=disable&password=PgQuery1",
		"REDIS_URL":    "redis+sentinel://s1:26379?master_name=m&sentinel_password=SentinelPw1&password=RedisPw1",
		"ADMIN_TOKEN":  "AdminToken1",
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", c)
	line := buf.String()
	for _, secret := range []string{"PgUserinfo1", "PgQuery1", "SentinelPw1", "RedisPw1", "AdminToken1"} {
		if strings.Contains(line, secret) {
			t.Errorf("the log shows %s: %s", secret, line)
		}
	}
	for _, want := range []string{
		`"database":"postgres://bbs:***@db:5432/bbs?sslmode=disable&password=***"`,
		`"redis":"redis+sentinel://s1:26379?master_name=m&sentinel_password=***&password=***"`,
		`"admin_token":"***"`,
	} {
		if !strings.Contains(line, want) {
			t.Errorf("the log lacks %s: %s", want, line)
		}
	}
	var got struct{ Config map[string]any }
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if n, want := len(got.Config), reflect.TypeFor[Config]().NumField(); n != want {
		t.Errorf("LogValue logs %d settings, Config has %d fields: log every one (secrets masked)", n, want)
	}
}

func TestInternalListenerSettings(t *testing.T) {
	c, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.InternalAddr != ":9090" || c.Pprof || c.StreamRate != 60 || c.StreamBurst != 20 {
		t.Errorf("defaults: INTERNAL_ADDR %q, PPROF %v, STREAM_RATE %d, STREAM_BURST %d; want :9090, off, 60, 20",
			c.InternalAddr, c.Pprof, c.StreamRate, c.StreamBurst)
	}
	c, err = load(t, map[string]string{"INTERNAL_ADDR": "off"})
	if err != nil || c.InternalAddr != "" {
		t.Errorf("INTERNAL_ADDR=off: %q, %v; want none", c.InternalAddr, err)
	}
	c, err = load(t, map[string]string{"INTERNAL_ADDR": "127.0.0.1:0", "PPROF": "on", "STREAM_RATE": "0"})
	if err != nil || !c.Pprof || c.StreamRate != 0 {
		t.Errorf("PPROF=on, STREAM_RATE=0: %+v, %v", c, err)
	}
	for _, env := range []map[string]string{
		{"HTTP_ADDR": ":8080", "INTERNAL_ADDR": ":8080"},
		{"HTTP_ADDR": "127.0.0.1:8080", "INTERNAL_ADDR": ":8080"},
		{"HTTP_ADDR": ":8080", "INTERNAL_ADDR": "127.0.0.1:8080"},
		{"INTERNAL_ADDR": "off", "PPROF": "on"},
		{"INTERNAL_ADDR": "9090"},
		{"DEBUG_ADDR": "127.0.0.1:6060"},
		{"PPROF": "maybe"},
		{"STREAM_RATE": "-1"},
	} {
		if _, err := load(t, env); err == nil {
			t.Errorf("%v: accepted", env)
		}
	}
	if _, err := load(t, map[string]string{"HTTP_ADDR": "127.0.0.1:0", "INTERNAL_ADDR": "127.0.0.1:0"}); err != nil {
		t.Errorf("both on port 0: %v", err)
	}
}

func TestTrustedProxiesNone(t *testing.T) {
	c, err := load(t, map[string]string{"TRUSTED_PROXIES": "none"})
	if err != nil || len(c.TrustedProxies) != 0 {
		t.Errorf("TRUSTED_PROXIES=none: %v, %v", c.TrustedProxies, err)
	}
	if _, err := load(t, map[string]string{"TRUSTED_PROXIES": "set-me-to-your-ingress-pod-range"}); err == nil ||
		!strings.Contains(err.Error(), "TRUSTED_PROXIES") {
		t.Errorf("a placeholder: %v, want an error naming TRUSTED_PROXIES", err)
	}
}
