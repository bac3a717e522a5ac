package deploytest

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
)

const nginxHelp = "nginx is needed (Debian's package, as `make cluster` uses): apt-get install -y nginx"

// stack is what `make cluster` runs, started by the test: three replicas
// on a throwaway database and Redis prefix, and nginx running the
// configuration rendered from services/lb/nginx.conf.tmpl.
type stack struct {
	LB       string // nginx's host:port
	TLS      string // nginx's host:port for HTTPS and HTTP/2
	CA       string // the file of the certificate to trust for TLS
	Replicas []*replica
	DBURL    string
	nginxLog string
}

// startStack starts the stack; env adds to or overrides the replicas'
// environment.
func startStack(t *testing.T, env map[string]string) *stack {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx = "/usr/sbin/nginx" // not always on a non-root PATH
		if _, err := os.Stat(nginx); err != nil {
			t.Fatalf("nginx not found: %v\n%s", err, nginxHelp)
		}
	}
	s := &stack{DBURL: testenv.PostgresURL(t)}
	redisURL := testenv.RedisURL(t)
	base := map[string]string{
		"DATABASE_URL":    s.DBURL,
		"REDIS_URL":       redisURL,
		"REDIS_PREFIX":    testenv.RedisPrefix(t, redisURL),
		"TRUSTED_PROXIES": "127.0.0.1/32", // nginx, and only nginx
		"LOG_LEVEL":       "warn",
	}
	maps.Copy(base, env)
	testenv.Migrate(t, testenv.BBS(t), s.DBURL)

	s.Replicas = startReplicas(t, 3, base)
	var addrs []string
	for _, r := range s.Replicas {
		addrs = append(addrs, r.Addr)
	}
	s.LB = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	s.TLS = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	var certs string
	s.nginxLog, certs = startNginx(t, nginx, renderLocal(t, s.LB, s.TLS, addrs...))
	s.CA = filepath.Join(certs, "ca.pem")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx's errors (last 20):\n%s", s.nginxErrors(20))
		}
	})
	return s
}

// startNginx runs nginx in the foreground with conf, its prefix (pid,
// temp files) in a temporary directory, and stops it (SIGQUIT: graceful)
// when the test ends. It returns the path of nginx's log and the directory
// of its certificate, made by tls-cert.sh as compose and make cluster do.
func startNginx(t *testing.T, nginx, conf string) (logPath, certs string) {
	t.Helper()
	prefix := t.TempDir() + "/"
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	certs = filepath.Join(prefix, "tls")
	makeCert(t, certs)
	logPath = filepath.Join(prefix, "nginx.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	args := []string{"-p", prefix, "-c", confPath, "-e", "stderr"}
	if out, err := exec.Command(nginx, append(args, "-t", "-q")...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(nginx, append(args, "-g", "daemon off;")...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	listen := listenAddr(t, conf)
	testenv.Eventually(t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", listen)
		if err != nil {
			return fmt.Errorf("nginx did not listen on %s:\n%s", listen, readFile(t, logPath))
		}
		c.Close()
		return nil
	})
	return logPath, certs
}

// makeCert runs services/lb/tls-cert.sh, which compose and make cluster
// run for nginx's certificate, into dir.
func makeCert(t testing.TB, dir string) {
	t.Helper()
	out, err := exec.Command("sh", filepath.Join(repoRoot(t), "services/lb/tls-cert.sh"), dir).CombinedOutput()
	if err != nil {
		t.Fatalf("tls-cert.sh: %v\n%s", err, out)
	}
}

// renderLocal renders the template as `make cluster` does: HTTP/1.1 on
// listen, HTTPS and HTTP/2 on tlsListen.
func renderLocal(t testing.TB, listen, tlsListen string, upstreams ...string) string {
	t.Helper()
	return render(t, append([]string{"local", listen, tlsListen}, upstreams...)...)
}

func render(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(repoRoot(t), "services/lb/render.sh")}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("render.sh %v: %v", args, err)
	}
	return string(out)
}

// nginxErrors returns the last n error and warning lines of nginx's log.
func (s *stack) nginxErrors(n int) string {
	b, _ := os.ReadFile(s.nginxLog)
	var errs []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "[error]") || strings.Contains(l, "[warn]") || strings.Contains(l, "[alert]") {
			errs = append(errs, l)
		}
	}
	return strings.Join(errs[max(0, len(errs)-n):], "\n")
}
