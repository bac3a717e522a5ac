package deploytest

import (
	"errors"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// withoutTestServers is env less the variables that choose the servers
// .ci/with-services.sh runs a command against.
func withoutTestServers(env []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if name != "TEST_DATABASE_URL" && name != "TEST_REDIS_URL" && name != "TEST_SERVICES" {
			out = append(out, kv)
		}
	}
	return out
}

var (
	servicesDirRe = regexp.MustCompile(`\(in (/[^)]+)\)`)
	servicesURLRe = regexp.MustCompile(`(?m)^(db|redis)=(\S+)$`)
)

// TestWithServicesOwn runs .ci/with-services.sh the way `make test` runs it
// on a machine where no Postgres or Redis answers: this machine's servers
// answer, so TEST_SERVICES=own makes it start its throwaway ones all the
// same. The command finds both answering at the URLs exported to it, its
// exit status is the script's, and afterwards both servers are stopped and
// their directory is gone.
func TestWithServicesOwn(t *testing.T) {
	probe := `pg_isready -d "$TEST_DATABASE_URL" && redis-cli -u "$TEST_REDIS_URL" ping &&
echo "db=$TEST_DATABASE_URL" && echo "redis=$TEST_REDIS_URL" && exit 3`
	cmd := exec.Command("bash", filepath.Join(repoRoot(t), ".ci/with-services.sh"), "sh", "-c", probe)
	cmd.Env = append(withoutTestServers(os.Environ()), "TEST_SERVICES=own")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("with-services.sh: %v, want exit status 3, the command's\n%s", err, out)
	}
	if !strings.Contains(string(out), "accepting connections") || !strings.Contains(string(out), "PONG") {
		t.Fatalf("the command did not find both servers answering:\n%s", out)
	}
	urls := map[string]string{}
	for _, m := range servicesURLRe.FindAllStringSubmatch(string(out), -1) {
		urls[m[1]] = m[2]
	}
	for kind, local := range map[string]string{"db": "5432", "redis": "6379"} {
		u, err := url.Parse(urls[kind])
		if err != nil || u.Hostname() != "127.0.0.1" || u.Port() == "" {
			t.Fatalf("%s URL %q: want one on 127.0.0.1 with a port (%v)\n%s", kind, urls[kind], err, out)
		}
		if u.Port() == local {
			t.Errorf("%s URL %s is the local server's, not a throwaway one", kind, urls[kind])
		}
		if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
			c.Close()
			t.Errorf("%s at %s still answers after the command ended", kind, u.Host)
		}
	}
	m := servicesDirRe.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("with-services.sh named no directory:\n%s", out)
	}
	if _, err := os.Stat(m[1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the throwaway servers' directory %s is still there (%v)", m[1], err)
	}
}

// TestWithServicesKeepsGivenURLs: servers named by TEST_DATABASE_URL and
// TEST_REDIS_URL are what the command gets, untouched and unprobed (these
// answer nowhere), and nothing is started.
func TestWithServicesKeepsGivenURLs(t *testing.T) {
	const db, redis = "postgres://u@127.0.0.1:1/d?sslmode=disable", "redis://127.0.0.1:1/0"
	cmd := exec.Command("bash", filepath.Join(repoRoot(t), ".ci/with-services.sh"),
		"sh", "-c", `echo "$TEST_DATABASE_URL $TEST_REDIS_URL"`)
	cmd.Env = append(withoutTestServers(os.Environ()), "TEST_DATABASE_URL="+db, "TEST_REDIS_URL="+redis)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("with-services.sh: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != db+" "+redis {
		t.Errorf("the command saw and printed %q, want %q", got, db+" "+redis)
	}
}
