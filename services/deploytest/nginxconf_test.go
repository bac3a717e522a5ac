package deploytest

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// splitConf cuts a rendered configuration into its upstream block (from
// the template's marker comment to the block's closing brace), its listen
// lines (one a line), and everything else, which must be the same for
// every deployment.
func splitConf(t testing.TB, conf string) (upstream, listen, shared string) {
	t.Helper()
	var up, rest []string
	in := false
	for _, line := range strings.Split(conf, "\n") {
		switch {
		case strings.Contains(line, "# The upstream block:"):
			in = true
			rest = append(rest, line)
			continue
		case in:
			up = append(up, line)
			if line == "    }" {
				in = false
			}
			continue
		case strings.HasPrefix(strings.TrimSpace(line), "listen "):
			listen += strings.TrimSpace(line) + "\n"
			continue
		}
		rest = append(rest, line)
	}
	if len(up) == 0 || listen == "" {
		t.Fatalf("rendered configuration has no upstream block or listen line:\n%s", conf)
	}
	return strings.Join(up, "\n"), strings.TrimSuffix(listen, "\n"), strings.Join(rest, "\n")
}

var listenRe = regexp.MustCompile(`(?m)^\s*listen ([^;]+);`)

func listenAddr(t testing.TB, conf string) string {
	t.Helper()
	m := listenRe.FindStringSubmatch(conf)
	if m == nil {
		t.Fatal("no listen directive")
	}
	return m[1]
}

// TestNginxConfigsAgree: compose and make cluster run one configuration;
// only the listen lines and the upstream block may differ. Both listen
// with HTTP/1.1 and with TLS and HTTP/2.
func TestNginxConfigsAgree(t *testing.T) {
	t.Parallel()
	compose := render(t, "compose")
	if committed := readFile(t, filepath.Join(repoRoot(t), "services/lb/nginx.conf")); committed != compose {
		t.Fatal("services/lb/nginx.conf is stale: run services/lb/render.sh compose > services/lb/nginx.conf")
	}
	addrs := []string{"127.0.0.1:18081", "127.0.0.1:18082", "127.0.0.1:18083"}
	local := renderLocal(t, "127.0.0.1:8080", "127.0.0.1:8443", addrs...)
	cUp, cListen, cShared := splitConf(t, compose)
	lUp, lListen, lShared := splitConf(t, local)
	if cShared != lShared {
		t.Errorf("compose and make cluster configurations differ outside the upstream block:\n--- compose\n%s\n--- cluster\n%s", cShared, lShared)
	}
	if cListen != "listen 80;\nlisten 443 ssl http2;" || lListen != "listen 127.0.0.1:8080;\nlisten 127.0.0.1:8443 ssl http2;" {
		t.Errorf("listen lines %q, %q", cListen, lListen)
	}
	for _, want := range []string{"zone bbs", "resolver 127.0.0.11 valid=", "server bbs:8080 resolve", "keepalive "} {
		if !strings.Contains(cUp, want) {
			t.Errorf("compose upstream lacks %q (re-resolving the scaled service, with keepalive):\n%s", want, cUp)
		}
	}
	for _, want := range append([]string{"zone bbs", "keepalive "}, addrs...) {
		if !strings.Contains(lUp, want) {
			t.Errorf("cluster upstream lacks %q:\n%s", want, lUp)
		}
	}
}

// TestNginxConfigCarriesSSE checks what SSE needs behind nginx, in the
// shared part of the configuration.
func TestNginxConfigCarriesSSE(t *testing.T) {
	t.Parallel()
	_, _, shared := splitConf(t, render(t, "compose"))
	for _, want := range []string{
		"proxy_http_version 1.1;",
		`proxy_set_header Connection "";`,
		"proxy_set_header X-Forwarded-For $remote_addr;",
	} {
		if !strings.Contains(shared, want) {
			t.Errorf("nginx.conf lacks %q", want)
		}
	}
	_, stream, ok := strings.Cut(shared, "location = /api/topics/stream {")
	if !ok {
		t.Fatal("nginx.conf: no location for /api/topics/stream")
	}
	stream, _, _ = strings.Cut(stream, "}")
	for _, want := range []string{"proxy_buffering off;", "gzip off;", "proxy_pass http://bbs;"} {
		if !strings.Contains(stream, want) {
			t.Errorf("stream location lacks %q", want)
		}
	}
	m := regexp.MustCompile(`proxy_read_timeout (\w+);`).FindStringSubmatch(stream)
	if m == nil {
		t.Fatal("stream location: no proxy_read_timeout (the default 60s is too close to idle)")
	}
	if d, err := time.ParseDuration(m[1]); err != nil || d <= 15*time.Second {
		t.Errorf("stream proxy_read_timeout %s must exceed the default SSE_HEARTBEAT 15s", m[1])
	}
}

// TestNginxAcceptsClusterConfig: Debian's nginx parses the rendering.
func TestNginxAcceptsClusterConfig(t *testing.T) {
	t.Parallel()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx = "/usr/sbin/nginx"
	}
	dir := t.TempDir() + "/"
	conf := filepath.Join(dir, "nginx.conf")
	writeFile(t, conf, renderLocal(t, "127.0.0.1:1", "127.0.0.1:4", "127.0.0.1:2", "127.0.0.1:3"))
	makeCert(t, filepath.Join(dir, "tls"))
	if out, err := exec.Command(nginx, "-p", dir, "-c", conf, "-e", "stderr", "-t", "-q").CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s\n%s", err, out, nginxHelp)
	}
}

var keepaliveTimeoutRe = regexp.MustCompile(`(?m)^\s*keepalive_timeout (\w+);`)

// nginxKeepaliveTimeout is how long nginx keeps an idle upstream
// connection in its pool.
func nginxKeepaliveTimeout(t testing.TB) time.Duration {
	t.Helper()
	m := keepaliveTimeoutRe.FindStringSubmatch(render(t, "compose"))
	if m == nil {
		t.Fatal("nginx.conf: no keepalive_timeout in the upstream block (the default 60s outlives a drain)")
	}
	d, err := time.ParseDuration(m[1])
	if err != nil {
		t.Fatalf("keepalive_timeout %q: %v", m[1], err)
	}
	return d
}

// TestNginxDrainSafe: nginx closes its idle connections to a replica
// before the replica, draining, closes them (nginx would answer 502 to a
// POST sent on one as it closes), and retries what is safe to retry: a
// request never sent, and a 503 (a stream opened on a draining replica).
func TestNginxDrainSafe(t *testing.T) {
	t.Parallel()
	ka := nginxKeepaliveTimeout(t)
	delay := composeConfig(t, loadCompose(t)).DrainDelay
	if ka >= delay {
		t.Errorf("nginx keepalive_timeout %v must be shorter than the replicas' DRAIN_DELAY %v (docker-compose.yml)", ka, delay)
	}
	m := regexp.MustCompile(`proxy_next_upstream ([^;]+);`).FindStringSubmatch(render(t, "compose"))
	if m == nil {
		t.Fatal("nginx.conf: no proxy_next_upstream")
	}
	conds := strings.Fields(m[1])
	for _, want := range []string{"error", "http_503"} {
		if !slices.Contains(conds, want) {
			t.Errorf("proxy_next_upstream %q lacks %s", m[1], want)
		}
	}
	if slices.Contains(conds, "non_idempotent") {
		t.Errorf("proxy_next_upstream %q: non_idempotent would send a POST twice", m[1])
	}
}
