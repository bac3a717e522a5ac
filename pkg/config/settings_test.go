package config

import (
	"bytes"
	"log/slog"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// samples holds a value other than the default for every setting, the
// secrets with credentials in them; TestSamplesCoverTheTable keeps it
// complete.
var samples = map[string]string{
	"HTTP_ADDR":              "127.0.0.1:8181",
	"INTERNAL_ADDR":          "127.0.0.1:9191",
	"PPROF":                  "on",
	"DATABASE_URL":           "postgres://bbs:Sekr3tUserinfo@db:5432/bbs?sslmode=disable&password=Sekr3tQuery",
	"REDIS_URL":              "redis+sentinel://s1:26379?master_name=m&sentinel_password=Sekr3tSentinel",
	"REDIS_PREFIX":           "{t}",
	"ADMIN_TOKEN":            "Sekr3tAdmin",
	"REPLICA_ID":             "r9",
	"SNAPSHOT_LIMIT":         "7",
	"SSE_HEARTBEAT":          "3s",
	"SSE_RETRY":              "4s",
	"DRAIN_DELAY":            "6s",
	"SHUTDOWN_GRACE":         "9s",
	"DRAIN_JITTER":           "1s",
	"VERSION_CHECK":          "8s",
	"MAX_STREAMS":            "11",
	"WRITE_RATE":             "12/min",
	"WRITE_BURST":            "13",
	"STREAM_RATE":            "14",
	"STREAM_BURST":           "15",
	"TRUSTED_PROXIES":        "10.1.0.0/16, 192.0.2.7",
	"MAX_STREAMS_PER_CLIENT": "16",
	"LOG_LEVEL":              "warn",
}

// baseline pins the defaults that depend on other settings, so setting one
// variable changes one field.
var baseline = map[string]string{"DRAIN_DELAY": "3s"}

func names() []string {
	var out []string
	for _, s := range Settings() {
		out = append(out, s.Name)
	}
	return out
}

func TestSamplesCoverTheTable(t *testing.T) {
	if got, want := slices.Sorted(maps.Keys(samples)), slices.Sorted(slices.Values(names())); !slices.Equal(got, want) {
		t.Fatalf("samples has %v; the table has %v", got, want)
	}
	if n := len(names()); len(slices.Compact(slices.Sorted(slices.Values(names())))) != n {
		t.Errorf("a variable is listed twice: %v", names())
	}
}

// fieldName is the Config field a variable fills: its CamelCase, with Go's
// initialisms in capitals.
func fieldName(env string) string {
	var b strings.Builder
	for _, w := range strings.Split(env, "_") {
		switch w {
		case "HTTP", "URL", "ID", "SSE":
			b.WriteString(w)
		default:
			b.WriteString(w[:1] + strings.ToLower(w[1:]))
		}
	}
	return b.String()
}

// TestEverySettingFillsItsField: one name for each setting in the
// environment and in Config. Each variable set alone changes exactly the
// field named after it, and Config has no field the table does not fill.
func TestEverySettingFillsItsField(t *testing.T) {
	base, err := load(t, baseline)
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeFor[Config]()
	if typ.NumField() != len(Settings()) {
		t.Errorf("Config has %d fields, the table %d settings: every field is a row", typ.NumField(), len(Settings()))
	}
	for _, s := range Settings() {
		env := maps.Clone(baseline)
		env[s.Name] = samples[s.Name]
		c, err := load(t, env)
		if err != nil {
			t.Errorf("%s=%s: %v", s.Name, samples[s.Name], err)
			continue
		}
		var changed []string
		for i := range typ.NumField() {
			if !reflect.DeepEqual(reflect.ValueOf(base).Field(i).Interface(), reflect.ValueOf(c).Field(i).Interface()) {
				changed = append(changed, typ.Field(i).Name)
			}
		}
		if want := fieldName(s.Name); !slices.Equal(changed, []string{want}) {
			t.Errorf("%s changes %v; want the field %s alone", s.Name, changed, want)
		}
	}
}

// TestDefaults: unset, each variable is what the table says; where the
// default is not itself a value (unset, the hostname, one that depends
// on REDIS_URL) it is listed here.
func TestDefaults(t *testing.T) {
	host, _ := os.Hostname()
	notValues := map[string]string{
		"DATABASE_URL": "sqlite:bbs.db",
		"REDIS_URL":    "in-process",
		"ADMIN_TOKEN":  "unset",
		"REPLICA_ID":   host,
		"DRAIN_DELAY":  "0s",
	}
	c, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Settings() {
		want, ok := notValues[s.Name]
		if !ok {
			want = s.Default
		}
		if got := s.Value(c); got != want {
			t.Errorf("%s unset: %q; want %q (the table's default: %q)", s.Name, got, want, s.Default)
		}
	}
	withRedis, err := load(t, map[string]string{"REDIS_URL": "redis://r:6379"})
	if err != nil {
		t.Fatal(err)
	}
	if withRedis.DrainDelay != drainDelay || c.DrainDelay != 0 {
		t.Errorf("DRAIN_DELAY unset: %v with REDIS_URL, %v without; want %v and 0", withRedis.DrainDelay, c.DrainDelay, drainDelay)
	}
	if i := slices.Index(names(), "DRAIN_DELAY"); i < slices.Index(names(), "REDIS_URL") {
		t.Errorf("DRAIN_DELAY is read before REDIS_URL, whose value its default needs")
	}
}

// TestValuesReadBack: what `bbs config` shows of a setting that is not a
// secret is a value the variable accepts, and means the same.
func TestValuesReadBack(t *testing.T) {
	for _, env := range []map[string]string{nil, samples, {"INTERNAL_ADDR": "off", "TRUSTED_PROXIES": "none"}} {
		c, err := load(t, env)
		if err != nil {
			t.Fatal(err)
		}
		shown := map[string]string{}
		for _, s := range Settings() {
			if !s.Secret {
				shown[s.Name] = s.Value(c)
			}
		}
		again, err := load(t, shown)
		if err != nil {
			t.Fatalf("%v: shown %v, which is refused: %v", env, shown, err)
		}
		again.DatabaseURL, again.RedisURL, again.AdminToken = c.DatabaseURL, c.RedisURL, c.AdminToken
		if !reflect.DeepEqual(again, c) {
			t.Errorf("%v: shown %v, read back as %+v; want %+v", env, shown, again, c)
		}
	}
}

// TestSecretsAreMasked: a secret's value is shown nowhere, by `bbs config`
// or the log; every other value is shown as set.
func TestSecretsAreMasked(t *testing.T) {
	c, err := load(t, samples)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", c)
	var secrets []string
	for _, s := range Settings() {
		if s.Secret {
			secrets = append(secrets, s.Name)
		}
	}
	if want := []string{"DATABASE_URL", "REDIS_URL", "ADMIN_TOKEN"}; !slices.Equal(secrets, want) {
		t.Errorf("secret settings %v, want %v", secrets, want)
	}
	for _, s := range Settings() {
		v := s.Value(c)
		if !s.Secret {
			if v == "" {
				t.Errorf("%s shown empty", s.Name)
			}
			continue
		}
		if !strings.Contains(samples[s.Name], "Sekr3t") {
			t.Fatalf("the sample for %s has no credential to look for", s.Name)
		}
		if strings.Contains(v, "Sekr3t") || !strings.Contains(v, "***") {
			t.Errorf("%s shown as %q: want its credentials masked", s.Name, v)
		}
	}
	if strings.Contains(buf.String(), "Sekr3t") {
		t.Errorf("the log line shows a credential: %s", buf.String())
	}
}

// TestErrorsNameTheVariable: each kind of value refuses what it cannot
// read, naming the variable, and every problem is reported at once.
func TestErrorsNameTheVariable(t *testing.T) {
	bad := map[string]string{
		"PPROF":           `PPROF: "maybe" is not on or off`,
		"SNAPSHOT_LIMIT":  `SNAPSHOT_LIMIT: "lots" is not a non-negative integer`,
		"SSE_HEARTBEAT":   `SSE_HEARTBEAT: "-1s" is not a duration like 15s`,
		"WRITE_RATE":      `WRITE_RATE: "30/h" is not a rate like 30/min`,
		"TRUSTED_PROXIES": `TRUSTED_PROXIES: "x" is not a CIDR or address; TRUSTED_PROXIES: "y" is not a CIDR or address`,
		"LOG_LEVEL":       `LOG_LEVEL: slog: level string "loud": unknown name`,
	}
	env := map[string]string{
		"PPROF": "Maybe", "SNAPSHOT_LIMIT": "lots", "SSE_HEARTBEAT": "-1s", "WRITE_RATE": "30/h",
		"TRUSTED_PROXIES": "x,10.0.0.0/24 y", "LOG_LEVEL": "loud",
	}
	for name, want := range bad {
		_, err := load(t, map[string]string{name: env[name]})
		// A number that does not parse may break a range as well.
		if err == nil || !strings.HasPrefix(err.Error(), "configuration: "+want) {
			t.Errorf("%s=%s: %v; want configuration: %s", name, env[name], err, want)
		}
	}
	_, err := load(t, env)
	for _, want := range bad {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("all at once: %v; lacks %s", err, want)
		}
	}
	for _, env := range []map[string]string{{"SNAPSHOT_LIMIT": "501"}, {"SNAPSHOT_LIMIT": "0"}, {"SSE_HEARTBEAT": "0s"}} {
		if _, err := load(t, env); err == nil {
			t.Errorf("%v: accepted", env)
		}
	}
}

func TestEverySettingIsDocumented(t *testing.T) {
	for _, s := range Settings() {
		if s.Default == "" || s.Help == "" || strings.Contains(s.Help, "\n") {
			t.Errorf("%s: default %q, help %q: want both, on one line", s.Name, s.Default, s.Help)
		}
	}
}
