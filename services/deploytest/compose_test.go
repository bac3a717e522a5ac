package deploytest

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/config"
	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// composeAdminToken is the ADMIN_TOKEN the tests give compose, which
// refuses to start without one.
const composeAdminToken = "a-token-the-user-chose-0123456789"

// loadCompose loads docker-compose.yml as `docker compose` would, with only
// ADMIN_TOKEN from the environment (so the defaults in the file apply to
// everything else).
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadComposeEnv(t, "ADMIN_TOKEN="+composeAdminToken)
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

// loadComposeEnv loads docker-compose.yml with exactly env as the
// environment: no variable of the test's own, no .env file.
func loadComposeEnv(t *testing.T, env ...string) (*types.Project, error) {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithName("bbs"), cli.WithConsistency(true),
		cli.WithEnv(env), cli.WithDiscardEnvFile)
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

// TestComposeAdminToken: the stack does not start without an admin token
// of the user's own, and has none of its own. Before, ADMIN_TOKEN defaulted
// to dev-admin-token, a token anyone reading the repository knows, on a
// port published on every interface.
func TestComposeAdminToken(t *testing.T) {
	t.Parallel()
	if _, err := loadComposeEnv(t); err == nil || !strings.Contains(err.Error(), "ADMIN_TOKEN") {
		t.Errorf("docker-compose.yml without ADMIN_TOKEN: %v, want it refused, naming ADMIN_TOKEN", err)
	}
	p := loadCompose(t)
	if got := envString(service(t, p, "bbs").Environment, "ADMIN_TOKEN", ""); got != composeAdminToken {
		t.Errorf("bbs: ADMIN_TOKEN %q, want the one given (%q)", got, composeAdminToken)
	}
	if text := readFile(t, filepath.Join(repoRoot(t), "docker-compose.yml")); strings.Contains(text, "dev-admin-token") {
		t.Error("docker-compose.yml still names dev-admin-token")
	}
}

// TestComposePublishesLocally: nginx is published on 127.0.0.1 unless
// BBS_PUBLISH says otherwise, and nothing else is published (the replicas'
// internal listeners stay on the compose network).
func TestComposePublishesLocally(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	for name, s := range p.Services {
		if name != "lb" && len(s.Ports) > 0 {
			t.Errorf("%s publishes %+v; only lb may", name, s.Ports)
		}
	}
	lb := service(t, p, "lb")
	if len(lb.Ports) != 2 || lb.Ports[0].HostIP != "127.0.0.1" || lb.Ports[0].Published != "8080" || lb.Ports[0].Target != 80 ||
		lb.Ports[1].HostIP != "127.0.0.1" || lb.Ports[1].Published != "8443" || lb.Ports[1].Target != 443 {
		t.Errorf("lb: ports %+v, want 127.0.0.1:8080:80 and 127.0.0.1:8443:443 by default", lb.Ports)
	}
	p, err := loadComposeEnv(t, "ADMIN_TOKEN="+composeAdminToken, "BBS_PUBLISH=0.0.0.0:80", "BBS_PUBLISH_TLS=0.0.0.0:443")
	if err != nil {
		t.Fatal(err)
	}
	if lb := service(t, p, "lb"); len(lb.Ports) != 2 || lb.Ports[0].HostIP != "0.0.0.0" || lb.Ports[0].Published != "80" ||
		lb.Ports[1].HostIP != "0.0.0.0" || lb.Ports[1].Published != "443" {
		t.Errorf("lb with BBS_PUBLISH=0.0.0.0:80 BBS_PUBLISH_TLS=0.0.0.0:443: ports %+v", lb.Ports)
	}
	// The replicas' internal listener is not the port nginx proxies to.
	cfg := composeConfig(t, p)
	if cfg.InternalAddr == "" || cfg.InternalAddr == cfg.HTTPAddr {
		t.Errorf("bbs: INTERNAL_ADDR %q, HTTP_ADDR %q: want an internal listener of its own", cfg.InternalAddr, cfg.HTTPAddr)
	}
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml: no service %q", name)
	}
	return s
}

func TestComposeDependenciesAndHealth(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	wantDeps := map[string]map[string]string{
		"migrate": {"postgres": types.ServiceConditionHealthy},
		"bbs": {
			"postgres": types.ServiceConditionHealthy,
			"redis":    types.ServiceConditionHealthy,
			"migrate":  types.ServiceConditionCompletedSuccessfully,
		},
		"lb": {"bbs": types.ServiceConditionHealthy, "tls": types.ServiceConditionCompletedSuccessfully},
	}
	for name, want := range wantDeps {
		got := map[string]string{}
		for dep, d := range service(t, p, name).DependsOn {
			got[dep] = d.Condition
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s depends_on %v, want %v", name, got, want)
		}
	}

	for name, probe := range map[string]string{"postgres": "pg_isready", "redis": "redis-cli ping"} {
		hc := service(t, p, name).HealthCheck
		if hc == nil || hc.Disable || !strings.Contains(strings.Join(hc.Test, " "), probe) {
			t.Errorf("%s healthcheck %+v, want one running %q", name, hc, probe)
		}
	}
	// bbs has no healthcheck of its own in the file: the image's
	// HEALTHCHECK (`bbs healthcheck`) is what service_healthy waits for.
	if hc := service(t, p, "bbs").HealthCheck; hc != nil {
		t.Errorf("bbs: healthcheck %+v overrides the image's", hc)
	}
	if hc := dockerfileHealthcheck(t); !slices.Contains(hc, "healthcheck") {
		t.Errorf("Dockerfile HEALTHCHECK %q does not run `bbs healthcheck`", hc)
	}

	pg := service(t, p, "postgres")
	if !hasVolume(pg, types.VolumeTypeVolume, "pgdata", "/var/lib/postgresql/data") {
		t.Errorf("postgres: no named volume pgdata on its data directory: %+v", pg.Volumes)
	}
	if _, ok := p.Volumes["pgdata"]; !ok {
		t.Error("volume pgdata is not declared")
	}
}

func TestComposeReplicasAndImage(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	bbs, migrate := service(t, p, "bbs"), service(t, p, "migrate")
	if bbs.Deploy == nil || bbs.Deploy.Replicas == nil || *bbs.Deploy.Replicas != 3 {
		t.Errorf("bbs: deploy.replicas %+v, want 3", bbs.Deploy)
	}
	if bbs.Image != migrate.Image || bbs.Build == nil || migrate.Build == nil {
		t.Errorf("bbs and migrate must build and run one image: %q, %q", bbs.Image, migrate.Image)
	}
	if !slices.Equal(migrate.Command, types.ShellCommand{"migrate"}) {
		t.Errorf("migrate: command %q, want [migrate]", migrate.Command)
	}
	if len(bbs.Ports) > 0 {
		t.Errorf("bbs publishes %+v: a scaled service cannot; go through lb", bbs.Ports)
	}
	// `docker compose stop` must let a replica drain before SIGKILL.
	cfg := composeConfig(t, p)
	grace, delay := cfg.ShutdownGrace, cfg.DrainDelay
	if bbs.StopGracePeriod == nil || time.Duration(*bbs.StopGracePeriod) <= delay+grace {
		t.Errorf("bbs: stop_grace_period %v must exceed DRAIN_DELAY %v + SHUTDOWN_GRACE %v", bbs.StopGracePeriod, delay, grace)
	}
}

func TestComposeEnvironmentIsRead(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	for _, name := range []string{"bbs", "migrate"} {
		env := service(t, p, name).Environment
		var names []string
		for k, v := range env {
			if v == nil || *v == "" {
				t.Errorf("%s: %s has no value", name, k)
			}
			names = append(names, k)
		}
		checkServerEnv(t, "docker-compose.yml service "+name, names)
		if env["DATABASE_URL"] == nil || !strings.Contains(*env["DATABASE_URL"], "@postgres:5432/") {
			t.Errorf("%s: DATABASE_URL does not point at the postgres service", name)
		}
	}
	env := service(t, p, "bbs").Environment
	if env["REDIS_URL"] == nil || !strings.HasPrefix(*env["REDIS_URL"], "redis://redis:6379") {
		t.Error("bbs: REDIS_URL does not point at the redis service")
	}
	// X-Forwarded-For is trusted from the compose network only.
	net := p.Networks["default"]
	if len(net.Ipam.Config) != 1 || env["TRUSTED_PROXIES"] == nil || *env["TRUSTED_PROXIES"] != net.Ipam.Config[0].Subnet {
		t.Errorf("bbs: TRUSTED_PROXIES %v must be the default network's subnet %+v", env["TRUSTED_PROXIES"], net.Ipam.Config)
	}
}

func TestComposeLoadBalancer(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	lb := service(t, p, "lb")
	conf := filepath.Join(repoRoot(t), "services/lb/nginx.conf")
	var mounted bool
	for _, v := range lb.Volumes {
		if v.Type == types.VolumeTypeBind && v.Source == conf && v.Target == "/etc/nginx/nginx.conf" {
			mounted = true
			if !v.ReadOnly {
				t.Error("lb: nginx.conf is mounted read-write")
			}
		}
	}
	if !mounted {
		t.Fatalf("lb: %s is not mounted on /etc/nginx/nginx.conf: %+v", conf, lb.Volumes)
	}
	if _, err := os.Stat(conf); err != nil {
		t.Fatalf("lb: the mounted config: %v", err)
	}
	if !slices.Contains(lb.Command, "/etc/nginx/nginx.conf") {
		t.Errorf("lb: command %q does not use the mounted config", lb.Command)
	}
	if len(lb.Ports) != 2 || lb.Ports[0].Target != 80 || lb.Ports[1].Target != 443 {
		t.Errorf("lb: ports %+v, want 80 and 443 published", lb.Ports)
	}
	// nginx listens where the ports are published (443 with TLS and
	// HTTP/2) and proxies to the port the replicas listen on.
	text := readFile(t, conf)
	if !strings.Contains(text, "listen 80;") || !strings.Contains(text, "listen 443 ssl http2;") {
		t.Error("nginx.conf does not listen on 80, and on 443 with ssl and http2")
	}
	// The certificate: made by tls-cert.sh on first start into the volume
	// tls, which nginx reads (read-only) next to its configuration, where
	// ssl_certificate tls/cert.pem points.
	tls := service(t, p, "tls")
	script := filepath.Join(repoRoot(t), "services/lb/tls-cert.sh")
	if !hasVolume(tls, types.VolumeTypeBind, script, "/lb/tls-cert.sh") || !hasVolume(tls, types.VolumeTypeVolume, "tls", "/tls") ||
		!slices.Equal(tls.Entrypoint, []string{"/bin/sh", "/lb/tls-cert.sh", "/tls"}) || tls.Image != lb.Image {
		t.Errorf("tls: want the nginx image running tls-cert.sh into the volume tls: %+v %q %+v", tls.Image, tls.Entrypoint, tls.Volumes)
	}
	if !hasVolume(lb, types.VolumeTypeVolume, "tls", "/etc/nginx/tls") || !strings.Contains(text, "ssl_certificate tls/cert.pem;") {
		t.Errorf("lb: the volume tls is not mounted next to nginx.conf as the configuration expects: %+v", lb.Volumes)
	}
	if _, ok := p.Volumes["tls"]; !ok {
		t.Error("volume tls is not declared")
	}
	addr := composeConfig(t, p).HTTPAddr
	if !strings.Contains(text, "server bbs"+addr+" resolve") {
		t.Errorf("nginx.conf: no `server bbs%s resolve` for the scaled service", addr)
	}
}

func hasVolume(s types.ServiceConfig, typ, source, target string) bool {
	for _, v := range s.Volumes {
		if v.Type == typ && v.Source == source && v.Target == target {
			return true
		}
	}
	return false
}

func envString(env types.MappingWithEquals, key, def string) string {
	if v := env[key]; v != nil && *v != "" {
		return *v
	}
	return def
}

// composeConfig is the configuration the replicas run with, as the server
// reads docker-compose.yml's environment for them (defaults included).
func composeConfig(t *testing.T, p *types.Project) config.Config {
	t.Helper()
	env := service(t, p, "bbs").Environment
	cfg, err := config.Load(func(k string) string { return envString(env, k, "") })
	if err != nil {
		t.Fatalf("docker-compose.yml: the server refuses the bbs environment: %v", err)
	}
	return cfg
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
