package deploytest

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// runtimeEnv are variables for the Go runtime, not the server.
var runtimeEnv = map[string]bool{"GOMAXPROCS": true, "GOMEMLIMIT": true}

// bbsPod is the server's Deployment, its container, its init container and
// the ConfigMap it takes its environment from.
type bbsPod struct {
	d          *appsv1.Deployment
	main, init corev1.Container
	config     map[string]string
}

func findBBS(t *testing.T, m manifests) bbsPod {
	t.Helper()
	d := m.Deployments["bbs"]
	if d == nil {
		t.Fatal("no Deployment bbs")
	}
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 || len(spec.InitContainers) != 1 {
		t.Fatalf("bbs: %d containers and %d init containers, want 1 and 1 (migrate)", len(spec.Containers), len(spec.InitContainers))
	}
	p := bbsPod{d: d, main: spec.Containers[0], init: spec.InitContainers[0]}
	for _, ef := range p.main.EnvFrom {
		if ef.ConfigMapRef == nil || m.ConfigMaps[ef.ConfigMapRef.Name] == nil {
			t.Fatalf("bbs: envFrom %+v names no ConfigMap of the build", ef)
		}
		p.config = m.ConfigMaps[ef.ConfigMapRef.Name].Data
	}
	return p
}

func TestKustomizeOverlays(t *testing.T) {
	for _, overlay := range []string{"overlays/dev", "overlays/prod"} {
		t.Run(overlay, func(t *testing.T) {
			t.Parallel()
			m := kustomize(t, overlay)
			p := findBBS(t, m)
			checkRollout(t, p)
			checkContainers(t, p)
			checkEnv(t, p)
			checkRouting(t, m, p)
			checkScaling(t, m, p)
			checkTrustedProxies(t, overlay, p)
			if overlay == "overlays/dev" {
				checkDev(t, m, p)
			} else {
				checkProd(t, m, p)
			}
		})
	}
}

// TestProbePathsExistOnServer asks a real bbs for every path the probes
// use: 200 or 503 (starting, draining) are answers; 404 is a typo.
func TestProbePathsExistOnServer(t *testing.T) {
	p := findBBS(t, kustomize(t, "base"))
	c := p.main
	probes := map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe}
	r := newReplica(t, "probe", map[string]string{
		"DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "bbs.db"),
		"LOG_LEVEL":    "warn",
	})
	r.start()
	for name, pr := range probes {
		if pr == nil || pr.HTTPGet == nil {
			t.Errorf("%s probe: want an httpGet", name)
			continue
		}
		resp, err := http.Get("http://" + r.Addr + pr.HTTPGet.Path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s probe GET %s: %s, want 200 or 503", name, pr.HTTPGet.Path, resp.Status)
		}
	}
}

// TestSecretTemplate checks the Secret operators fill in for prod.
func TestSecretTemplate(t *testing.T) {
	t.Parallel()
	s := decodeStrict[corev1.Secret](t, "base", []byte(readFile(t, filepath.Join(repoRoot(t), "k8s/base/secret.template.yaml"))))
	var keys []string
	for k := range s.StringData {
		keys = append(keys, k)
	}
	checkServerEnv(t, "k8s/base/secret.template.yaml", keys)
	for _, k := range keys {
		if slices.Contains(serverEnv(), k) && !slices.Contains(secretEnv(), k) {
			t.Errorf("k8s/base/secret.template.yaml holds %s, which is no secret (pkg/config's table): set it in config.env", k)
		}
	}
	p := findBBS(t, kustomize(t, "base"))
	for _, ref := range secretRefs(p) {
		if ref[0] != s.Name || s.StringData[ref[1]] == "" {
			t.Errorf("the pod reads key %s of Secret %s; the template has no such key", ref[1], ref[0])
		}
	}
}

// secretRefs lists the (secret, key, "optional" or "") triples the pod's
// containers read.
func secretRefs(p bbsPod) [][3]string {
	var refs [][3]string
	for _, c := range []corev1.Container{p.main, p.init} {
		for _, e := range c.Env {
			if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
				opt := ""
				if r.SecretKeyRef.Optional != nil && *r.SecretKeyRef.Optional {
					opt = "optional"
				}
				refs = append(refs, [3]string{r.SecretKeyRef.Name, r.SecretKeyRef.Key, opt})
			}
		}
	}
	return refs
}

func seconds(t *testing.T, what, v string) time.Duration {
	t.Helper()
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q: want whole seconds", what, v)
	}
	return time.Duration(n) * time.Second
}

func yamlOf(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
