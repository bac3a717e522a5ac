package deploytest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bbsboard/bbs/pkg/config"
	corev1 "k8s.io/api/core/v1"
)

// serverEnv lists the environment variables the server reads: pkg/config's
// table, which the server itself loads through.
func serverEnv() []string {
	var names []string
	for _, s := range config.Settings() {
		names = append(names, s.Name)
	}
	return names
}

// secretEnv lists the variables that hold credentials.
func secretEnv() []string {
	var names []string
	for _, s := range config.Settings() {
		if s.Secret {
			names = append(names, s.Name)
		}
	}
	return names
}

// checkServerEnv fails for every name the server does not read.
func checkServerEnv(t testing.TB, where string, names []string) {
	t.Helper()
	known := serverEnv()
	for _, n := range names {
		if !slices.Contains(known, n) {
			t.Errorf("%s sets %s, which the server does not read (pkg/config's table: %v)", where, n, known)
		}
	}
}

// TestREADMEConfigurationTable: README's Configuration table lists every
// setting of pkg/config's table, in its order, with its default, and
// nothing else. `bbs help` prints the same table.
func TestREADMEConfigurationTable(t *testing.T) {
	t.Parallel()
	text := readFile(t, filepath.Join(repoRoot(t), "README.md"))
	const heading = "\n## Configuration (environment)\n"
	i := strings.Index(text, heading)
	if i < 0 {
		t.Fatalf("README.md: no %q", strings.TrimSpace(heading))
	}
	var names []string
	defaults := map[string]string{}
	for _, line := range strings.Split(text[i+len(heading):], "\n") {
		if strings.HasPrefix(line, "#") {
			break
		}
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.TrimSuffix(strings.TrimPrefix(line, "| "), " |"), " | ")
		if len(cells) != 3 {
			t.Errorf("README.md: %d cells, want variable, default, meaning: %s", len(cells), line)
			continue
		}
		unquote := func(s string) string { return strings.ReplaceAll(s, "`", "") }
		names = append(names, unquote(cells[0]))
		defaults[unquote(cells[0])] = unquote(cells[1])
	}
	if !slices.Equal(names, serverEnv()) {
		t.Errorf("README.md's Configuration table lists\n\t%v\npkg/config's table (and bbs help)\n\t%v\nwant the same, in the same order", names, serverEnv())
	}
	for _, s := range config.Settings() {
		if d, ok := defaults[s.Name]; ok && d != s.Default {
			t.Errorf("README.md: %s defaults to %q; pkg/config's table says %q", s.Name, d, s.Default)
		}
	}
}

// checkSecrets: the pod takes every credential from a Secret, never from
// the ConfigMap (config.env and the overlays' literals) or a value
// written in a manifest.
func checkSecrets(t *testing.T, p bbsPod) {
	t.Helper()
	for _, n := range secretEnv() {
		if _, ok := p.config[n]; ok {
			t.Errorf("the ConfigMap sets %s, a secret (pkg/config's table): take it from the Secret bbs", n)
		}
	}
	for _, c := range []corev1.Container{p.main, p.init} {
		for _, e := range c.Env {
			if slices.Contains(secretEnv(), e.Name) && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
				t.Errorf("%s: %s %s, a secret: want it from a secretKeyRef", c.Name, e.Name, yamlOf(e))
			}
		}
	}
}

// podConfig is the configuration the pod's server runs with, as the
// server reads it: the ConfigMap, and a stand-in for each variable the pod
// takes from a Secret (only whether it is set matters here: DRAIN_DELAY's
// default depends on REDIS_URL). TRUSTED_PROXIES is read as none here;
// checkTrustedProxies checks it.
func podConfig(t *testing.T, p bbsPod) config.Config {
	t.Helper()
	env := map[string]string{}
	for k, v := range p.config {
		env[k] = v
	}
	for _, e := range p.main.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			env[e.Name] = "stand-in"
		}
	}
	env["TRUSTED_PROXIES"] = "none"
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("the pod's environment is refused: %v", err)
	}
	return cfg
}
