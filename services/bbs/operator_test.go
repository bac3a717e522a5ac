package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
)

// These tests hold the replica to what only operators may see (issue 11,
// items 6 and 8): metrics, readiness details and pprof on the internal
// listener only, and no credential in what the replica logs or returns.

// TestInternalEndpointsOffThePublicPort: /metrics, the readiness details
// and pprof answer on INTERNAL_ADDR and 404 on the public port, whose
// /readyz says only its status. Before, /metrics was on the public port
// (and so routed to the internet by every load balancer in front), and
// /readyz printed each dependency's error, which names internal hosts.
func TestInternalEndpointsOffThePublicPort(t *testing.T) {
	c := newCluster(t, "")
	r := c.start("r1", map[string]string{"PPROF": "on"})
	if r.Internal == "" {
		t.Fatal("the listening line names no internal address")
	}

	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/profile?seconds=1"} {
		checkAPIError(t, testenv.Do(t, testenv.Request{Method: "GET", URL: r.URL + path}), http.StatusNotFound, "not_found")
	}
	a := testenv.Do(t, testenv.Request{Method: "GET", URL: r.URL + "/readyz"})
	if a.Status != http.StatusOK || strings.TrimSpace(string(a.Body)) != `{"status":"ok"}` {
		t.Errorf("public /readyz: %d %s, want 200 {\"status\":\"ok\"} and nothing else", a.Status, a.Body)
	}

	if a := testenv.Do(t, testenv.Request{Method: "GET", URL: r.Internal + "/metrics"}); a.Status != http.StatusOK || !strings.Contains(string(a.Body), "bbs_version ") {
		t.Errorf("internal /metrics: %d, %d bytes, want 200 with bbs_version", a.Status, len(a.Body))
	}
	var detail struct {
		Status       string
		Replica      string
		Version      int64
		Dependencies map[string]string
	}
	a = testenv.Do(t, testenv.Request{Method: "GET", URL: r.Internal + "/readyz"})
	if err := json.Unmarshal(a.Body, &detail); err != nil || a.Status != http.StatusOK || detail.Status != "ok" ||
		detail.Replica != "r1" || detail.Dependencies["database"] != "ok" || detail.Dependencies["redis"] != "ok" {
		t.Errorf("internal /readyz: %d %s, want 200 ok naming the replica and each dependency", a.Status, a.Body)
	}
	if a := testenv.Do(t, testenv.Request{Method: "GET", URL: r.Internal + "/debug/pprof/cmdline"}); a.Status != http.StatusOK {
		t.Errorf("internal pprof with PPROF=on: %d", a.Status)
	}

	// pprof is off unless asked for.
	r2 := c.start("r2", nil)
	if a := testenv.Do(t, testenv.Request{Method: "GET", URL: r2.Internal + "/debug/pprof/"}); a.Status != http.StatusNotFound {
		t.Errorf("internal pprof without PPROF: %d, want 404", a.Status)
	}
	// INTERNAL_ADDR=off: no internal listener, and still nothing on the
	// public port.
	r3 := c.start("r3", map[string]string{"INTERNAL_ADDR": "off"})
	if r3.Internal != "" {
		t.Errorf("INTERNAL_ADDR=off: internal listener at %s", r3.Internal)
	}
	checkAPIError(t, testenv.Do(t, testenv.Request{Method: "GET", URL: r3.URL + "/metrics"}), http.StatusNotFound, "not_found")
}

// TestPublicReadinessHidesWhy: with Redis unreachable the public /readyz
// says "degraded" and nothing about why; the internal one names Redis and
// the error.
func TestPublicReadinessHidesWhy(t *testing.T) {
	c := newCluster(t, "")
	dead := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	r := c.start("r1", map[string]string{"REDIS_URL": "redis://" + dead + "/0"})
	var a testenv.Answer
	testenv.Eventually(t, 5*time.Second, func() error {
		if a = testenv.Do(t, testenv.Request{Method: "GET", URL: r.URL + "/readyz"}); !strings.Contains(string(a.Body), "degraded") {
			return fmt.Errorf("public /readyz with Redis down: %v, want degraded", a)
		}
		return nil
	})
	if a.Status != http.StatusOK || strings.TrimSpace(string(a.Body)) != `{"status":"degraded"}` {
		t.Errorf("public /readyz with Redis down: %d %s, want 200 {\"status\":\"degraded\"} and nothing else", a.Status, a.Body)
	}
	a = testenv.Do(t, testenv.Request{Method: "GET", URL: r.Internal + "/readyz"})
	var detail struct {
		Status       string
		Dependencies map[string]string
	}
	_ = json.Unmarshal(a.Body, &detail)
	if detail.Status != "degraded" || !strings.HasPrefix(detail.Dependencies["redis"], "down: ") || !strings.Contains(detail.Dependencies["redis"], dead) {
		t.Errorf("internal /readyz with Redis down: %d %s, want degraded with redis down and its error", a.Status, a.Body)
	}
}

// TestInternalAddrInUse: a replica whose internal address cannot be bound
// does not start, and says which setting to change.
func TestInternalAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := newCluster(t, "")
	m := map[string]string{"INTERNAL_ADDR": ln.Addr().String(), "REPLICA_ID": "r1"}
	for k, v := range c.base {
		if k != "INTERNAL_ADDR" {
			m[k] = v
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := run(ctx, nil, env(m), io.Discard); err == nil || !strings.Contains(err.Error(), "INTERNAL_ADDR") {
		t.Errorf("run with INTERNAL_ADDR in use: %v, want an error naming INTERNAL_ADDR", err)
	}
}

// loggedRun runs a replica in-process with m, its log in a buffer. It
// returns once the replica listens (with its public URL) or has exited
// (with its error); stop ends it and returns the whole log.
func loggedRun(t *testing.T, m map[string]string) (base string, stop func() string, exitErr error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := &testenv.LockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, env(m), log) }()
	stop = func() string {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("replica did not stop")
		}
		return log.String()
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-done:
			done <- err
			return "", stop, err
		default:
		}
		sc := bufio.NewScanner(strings.NewReader(log.String()))
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				return "http://" + line.Addr, stop, nil
			}
		}
	}
	t.Fatalf("replica neither listened nor exited:\n%s", stop())
	return
}

// passwordRedis starts a redis-server of the test's own that requires a
// password, and returns its address.
func passwordRedis(t *testing.T, password string) string {
	t.Helper()
	port := testenv.FreePort(t)
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--requirepass", password)
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v (apt-get install -y redis-server)", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	testenv.Eventually(t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return fmt.Errorf("redis-server did not start: %w", err)
		}
		c.Close()
		return nil
	})
	return addr
}

// TestSecretsNotLogged starts replicas with credentials in every place a
// URL carries them (a URL's password, password= in a Postgres or Redis
// query string, Sentinel's sentinel_password, a password with a character
// that breaks the URL) and greps everything they log and return for them.
// Before, the start-up line printed query strings as given, and a REDIS_URL
// that did not parse was quoted whole in the error.
func TestSecretsNotLogged(t *testing.T) {
	const (
		pgUserinfo = "PgUserinfoS3cret"
		pgQuery    = "PgQueryS3cret"
		redisPw    = "RedisS3cret"
		sentinelPw = "SentinelS3cret"
		admin      = "AdminS3cretToken"
	)
	secrets := []string{pgUserinfo, pgQuery, redisPw, sentinelPw, admin}
	c := newCluster(t, "")
	// Postgres here trusts local connections, so the passwords are
	// carried, logged if anything logs them, and not needed.
	db, err := url.Parse(c.base["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	db.User = url.UserPassword(db.User.Username(), pgUserinfo)
	q := db.Query()
	q.Set("password", pgQuery)
	db.RawQuery = q.Encode()
	redisAddr := passwordRedis(t, redisPw)

	for _, tc := range []struct {
		name     string
		env      map[string]string
		mustFail bool
	}{
		{"working", map[string]string{
			"DATABASE_URL": db.String(),
			"REDIS_URL":    "redis://:" + redisPw + "@" + redisAddr + "/0",
		}, false},
		// go-redis refuses sentinel_password in a URL: the error and the
		// start-up line must still mask it.
		{"sentinel", map[string]string{
			"DATABASE_URL": db.String(),
			"REDIS_URL":    "redis+sentinel://127.0.0.1:1?master_name=m&password=" + redisPw + "&sentinel_password=" + sentinelPw,
		}, true},
		{"redis password with a '#'", map[string]string{
			"DATABASE_URL": db.String(),
			"REDIS_URL":    "redis://:" + redisPw + "#x@" + redisAddr + "/0",
		}, true},
		{"bad sslmode", map[string]string{
			"DATABASE_URL": strings.Replace(db.String(), "sslmode=disable", "sslmode=bogus", 1),
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range c.base {
				m[k] = v
			}
			m["REPLICA_ID"], m["ADMIN_TOKEN"], m["LOG_LEVEL"] = "r1", admin, "debug"
			delete(m, "REDIS_URL")
			for k, v := range tc.env {
				m[k] = v
			}
			base, stop, exitErr := loggedRun(t, m)
			var internalDetail string
			if base != "" {
				if tc.mustFail {
					t.Errorf("started; want it refused")
				}
				r := &replica{t: t, id: "r1", URL: base}
				r.waitReady()
				r.create(t, "with secrets in the URLs")
				a := testenv.Do(t, testenv.Request{Method: "GET", URL: base + "/readyz"})
				internalDetail = string(a.Body)
			} else if !tc.mustFail {
				t.Fatalf("exited at start: %v", exitErr)
			}
			log := stop()
			all := log + "\n" + internalDetail
			if exitErr != nil {
				all += "\nerror: " + exitErr.Error()
				t.Logf("refused: %v", exitErr)
			}
			for _, s := range secrets {
				if strings.Contains(all, s) {
					for _, line := range strings.Split(all, "\n") {
						if strings.Contains(line, s) {
							t.Errorf("%s shown: %s", s, line)
						}
					}
				}
			}
			if !strings.Contains(log, `"admin_token":"***"`) || !strings.Contains(log, `:***@`) {
				t.Errorf("the start-up line does not show the masked settings:\n%s", firstLine(log, `"msg":"starting"`))
			}
		})
	}
}

func firstLine(log, sub string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
