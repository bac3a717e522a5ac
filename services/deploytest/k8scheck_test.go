package deploytest

import (
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// checkRollout: a rolling update never goes below the wanted count, and a
// replica always gets its whole drain.
func checkRollout(t *testing.T, p bbsPod) {
	t.Helper()
	d := p.d
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas %v, want 3", d.Spec.Replicas)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != "RollingUpdate" || ru == nil ||
		*ru.MaxUnavailable != intstr.FromInt32(0) || *ru.MaxSurge != intstr.FromInt32(1) {
		t.Errorf("strategy %s, want RollingUpdate with maxUnavailable 0, maxSurge 1", yamlOf(d.Spec.Strategy))
	}
	pre := p.main.Lifecycle
	if pre == nil || pre.PreStop == nil || pre.PreStop.Sleep == nil || pre.PreStop.Sleep.Seconds <= 0 {
		t.Fatalf("no preStop sleep: the load balancer would still send to a draining replica")
	}
	sleep := time.Duration(pre.PreStop.Sleep.Seconds) * time.Second
	grace := p.configDuration(t, "SHUTDOWN_GRACE", 25*time.Second)
	delay := p.configDuration(t, "DRAIN_DELAY", 5*time.Second)
	tgp := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if tgp == nil || time.Duration(*tgp)*time.Second <= sleep+delay+grace {
		t.Errorf("terminationGracePeriodSeconds %v must exceed preStop %v + DRAIN_DELAY %v + SHUTDOWN_GRACE %v", tgp, sleep, delay, grace)
	}
	spread := d.Spec.Template.Spec.TopologySpreadConstraints
	if len(spread) == 0 || spread[0].TopologyKey != "kubernetes.io/hostname" || !selects(spread[0].LabelSelector.MatchLabels, d) {
		t.Errorf("topologySpreadConstraints %s: want the pods spread over kubernetes.io/hostname", yamlOf(spread))
	}
}

// checkContainers: probes, image, resources and a restrictive context.
func checkContainers(t *testing.T, p bbsPod) {
	t.Helper()
	c := p.main
	for name, pr := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		want := "/readyz"
		if name == "liveness" {
			want = "/healthz"
		}
		if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != want {
			t.Errorf("%s probe %s, want httpGet %s", name, yamlOf(pr), want)
			continue
		}
		if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == pr.HTTPGet.Port.StrVal }) {
			t.Errorf("%s probe port %v is no named port of the container", name, pr.HTTPGet.Port)
		}
	}
	if c.Image == "" || c.Image != p.init.Image || !strings.Contains(c.Image, ":") {
		t.Errorf("image %q and migrate's %q: want one tagged image for both", c.Image, p.init.Image)
	}
	if !slices.Equal(p.init.Args, []string{"migrate"}) {
		t.Errorf("init container args %q, want [migrate]", p.init.Args)
	}
	if c.Resources.Limits.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("resources %s: want requests and cpu/memory limits", yamlOf(c.Resources))
	}
	psc := p.d.Spec.Template.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %s: want runAsNonRoot and seccomp RuntimeDefault", yamlOf(psc))
	}
	for _, c := range []corev1.Container{p.main, p.init} {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("%s securityContext %s: want no privilege escalation, a read-only root, ALL capabilities dropped", c.Name, yamlOf(sc))
		}
	}
}

// checkEnv: every variable is one the server (or the Go runtime) reads,
// and the runtime follows the container's limits.
func checkEnv(t *testing.T, p bbsPod) {
	t.Helper()
	names := slices.Collect(maps.Keys(p.config))
	for _, c := range []corev1.Container{p.main, p.init} {
		for _, e := range c.Env {
			if !runtimeEnv[e.Name] {
				names = append(names, e.Name)
			}
		}
	}
	checkServerEnv(t, "the bbs pod", names)
	for name, res := range map[string]string{"GOMAXPROCS": "limits.cpu", "GOMEMLIMIT": "limits.memory"} {
		i := slices.IndexFunc(p.main.Env, func(e corev1.EnvVar) bool { return e.Name == name })
		if i < 0 || p.main.Env[i].ValueFrom == nil || p.main.Env[i].ValueFrom.ResourceFieldRef == nil ||
			p.main.Env[i].ValueFrom.ResourceFieldRef.Resource != res {
			t.Errorf("%s: want it from resourceFieldRef %s", name, res)
		}
	}
}

// checkRouting: the Service reaches the pods, and both the Ingress and the
// HTTPRoute keep streams open longer than the heartbeat.
func checkRouting(t *testing.T, m manifests, p bbsPod) {
	t.Helper()
	svc := m.Services["bbs"]
	if svc == nil || !selects(svc.Spec.Selector, p.d) || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.StrVal != p.main.Ports[0].Name {
		t.Fatalf("Service bbs %s does not reach the pods' port %q", yamlOf(svc), p.main.Ports[0].Name)
	}
	heartbeat := p.configDuration(t, "SSE_HEARTBEAT", 15*time.Second)

	ing := m.Ingresses["bbs"]
	if ing == nil {
		t.Fatal("no Ingress bbs")
	}
	a := ing.Annotations
	if a["nginx.ingress.kubernetes.io/proxy-buffering"] != "off" {
		t.Error(`Ingress: nginx.ingress.kubernetes.io/proxy-buffering must be "off": ingress-nginx buffers SSE`)
	}
	for _, k := range []string{"proxy-read-timeout", "proxy-send-timeout"} {
		if d := seconds(t, k, a["nginx.ingress.kubernetes.io/"+k]); d <= heartbeat {
			t.Errorf("Ingress %s %v must exceed SSE_HEARTBEAT %v", k, d, heartbeat)
		}
	}
	for _, r := range ing.Spec.Rules {
		for _, path := range r.HTTP.Paths {
			if b := path.Backend.Service; b == nil || b.Name != svc.Name || b.Port.Name != svc.Spec.Ports[0].Name {
				t.Errorf("Ingress path %s: backend %s, want Service bbs port %s", path.Path, yamlOf(path.Backend), svc.Spec.Ports[0].Name)
			}
		}
	}

	route := m.HTTPRoutes["bbs"]
	if route == nil {
		t.Fatal("no HTTPRoute bbs")
	}
	var stream bool
	for _, rule := range route.Spec.Rules {
		for _, b := range rule.BackendRefs {
			if string(b.Name) != svc.Name || b.Port == nil || int32(*b.Port) != svc.Spec.Ports[0].Port {
				t.Errorf("HTTPRoute backend %s, want Service bbs port %d", yamlOf(b), svc.Spec.Ports[0].Port)
			}
		}
		for _, match := range rule.Matches {
			if match.Path != nil && match.Path.Value != nil && *match.Path.Value == "/api/topics/stream" {
				stream = true
				if rule.Timeouts == nil || rule.Timeouts.Request == nil {
					t.Error("HTTPRoute: the stream rule has no request timeout; implementations default to seconds")
					continue
				}
				if d, err := time.ParseDuration(string(*rule.Timeouts.Request)); err != nil || d < time.Hour && d != 0 {
					t.Errorf("HTTPRoute: stream request timeout %v, want at least 1h (or 0s: none)", *rule.Timeouts.Request)
				}
			}
		}
	}
	if !stream {
		t.Error("HTTPRoute: no rule for /api/topics/stream")
	}
}

// checkScaling: the autoscaler and the disruption budget target the pods.
func checkScaling(t *testing.T, m manifests, p bbsPod) {
	t.Helper()
	hpa := m.HPAs["bbs"]
	if hpa == nil || hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != p.d.Name ||
		hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < *p.d.Spec.Replicas {
		t.Errorf("HPA %s: want it on Deployment bbs, never below its %d replicas", yamlOf(hpa), *p.d.Spec.Replicas)
	}
	pdb := m.PDBs["bbs"]
	if pdb == nil || pdb.Spec.Selector == nil || !selects(pdb.Spec.Selector.MatchLabels, p.d) {
		t.Errorf("PodDisruptionBudget %s does not select the pods", yamlOf(pdb))
	}
}

// checkDev: Postgres and Redis run in the cluster, and the generated
// Secret points at their Services.
func checkDev(t *testing.T, m manifests, p bbsPod) {
	t.Helper()
	if m.StatefulSets["postgres"] == nil || m.Deployments["redis"] == nil {
		t.Fatal("dev: want StatefulSet postgres and Deployment redis")
	}
	for _, ref := range secretRefs(p) {
		s := m.Secrets[ref[0]]
		if s == nil || len(s.Data[ref[1]]) == 0 {
			t.Fatalf("dev: the pod reads %s from Secret %s, which the build does not have", ref[1], ref[0])
		}
		if ref[1] == "DATABASE_URL" || ref[1] == "REDIS_URL" {
			u, err := url.Parse(string(s.Data[ref[1]]))
			if err != nil || !hasServicePort(m, u.Hostname(), u.Port()) {
				t.Errorf("dev: %s host %s is no Service of the overlay", ref[1], u.Host)
			}
		}
	}
}

// checkProd: nothing stateful in the cluster; the Secret comes from outside.
func checkProd(t *testing.T, m manifests, p bbsPod) {
	t.Helper()
	if len(m.StatefulSets) > 0 || len(m.Secrets) > 0 || m.Deployments["redis"] != nil {
		t.Error("prod: Postgres, Redis and the Secret are external; the overlay must not create them")
	}
	if strings.HasSuffix(p.main.Image, ":dev") || strings.HasSuffix(p.main.Image, ":latest") {
		t.Errorf("prod: image %s: pin a release", p.main.Image)
	}
}

func hasServicePort(m manifests, host, port string) bool {
	s := m.Services[host]
	return s != nil && slices.ContainsFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool { return strconv.Itoa(int(sp.Port)) == port })
}

// selects reports whether a selector matches the Deployment's pods.
func selects(sel map[string]string, d *appsv1.Deployment) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if d.Spec.Template.Labels[k] != v {
			return false
		}
	}
	return true
}
