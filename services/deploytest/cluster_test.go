package deploytest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
)

// TestClusterScript runs `make cluster` and `make cluster-down`'s script
// on free ports, a throwaway database and Redis prefix: up twice (the
// second finds everything running), a request through nginx reaching
// every replica, then down stopping every process it started.
func TestClusterScript(t *testing.T) {
	dir := t.TempDir()
	ports := []int{testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)}
	internal := []int{testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)}
	lb, lbTLS := testenv.FreePort(t), testenv.FreePort(t)
	redisURL := testenv.RedisURL(t)
	env := append(os.Environ(),
		"CLUSTER_DIR="+dir,
		fmt.Sprintf("LB_PORT=%d", lb),
		fmt.Sprintf("LB_TLS_PORT=%d", lbTLS),
		fmt.Sprintf("BBS_PORTS=%d %d %d", ports[0], ports[1], ports[2]),
		fmt.Sprintf("BBS_INTERNAL_PORTS=%d %d %d", internal[0], internal[1], internal[2]),
		"BBS_BIN="+testenv.BBS(t),
		"DATABASE_URL="+testenv.PostgresURL(t),
		"REDIS_URL="+redisURL,
		"REDIS_PREFIX="+testenv.RedisPrefix(t, redisURL),
	)
	script := filepath.Join(repoRoot(t), "services/lb/cluster.sh")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cluster.sh %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		cmd := exec.Command("bash", script, "down")
		cmd.Env = env
		_ = cmd.Run()
	})

	run("up")
	if out := run("up"); strings.Count(out, "already running") != 3 {
		t.Errorf("second up did not find the three replicas running:\n%s", out)
	}
	seen := map[string]bool{}
	for range 9 {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", lb))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		seen[resp.Header.Get("X-Replica")] = true
	}
	if len(seen) != 3 {
		t.Errorf("through the cluster's nginx, replicas %v answered, want 3", seen)
	}
	// HTTPS with HTTP/2, with the certificate the script made.
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(readFile(t, filepath.Join(dir, "nginx/tls/ca.pem")))) {
		t.Fatal("the cluster's nginx/tls/ca.pem holds no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	if resp, err := (&http.Client{Transport: tr}).Get(fmt.Sprintf("https://localhost:%d/readyz", lbTLS)); err != nil {
		t.Errorf("HTTPS through the cluster's nginx: %v", err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Errorf("HTTPS through the cluster's nginx: %s %s, want 200 over HTTP/2", resp.Proto, resp.Status)
	}
	// Metrics on each replica's internal port, not through nginx.
	for _, p := range internal {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", p))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("internal port %d: /metrics %d, want 200", p, resp.StatusCode)
		}
	}
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", lb)); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics through the cluster's nginx: %d, want 404", resp.StatusCode)
	}

	run("down")
	for _, p := range append(append(ports, internal...), lb, lbTLS) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second); err == nil {
			c.Close()
			t.Errorf("port %d still answers after down", p)
		}
	}
}
