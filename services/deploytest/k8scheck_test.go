package deploytest

import (
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/config"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
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
	cfg := podConfig(t, p)
	grace, delay := cfg.ShutdownGrace, cfg.DrainDelay
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
		if pr.HTTPGet.Port.StrVal != "http" {
			t.Errorf("%s probe on port %v, want the public port `http` (/healthz and the bare /readyz are served there)", name, pr.HTTPGet.Port)
		}
	}
	// The container's named ports are the server's two listeners.
	for name, key := range map[string]string{"http": "HTTP_ADDR", "metrics": "INTERNAL_ADDR"} {
		addr, ok := p.config[key]
		if !ok {
			t.Errorf("ConfigMap: no %s (the container's port %q depends on it)", key, name)
			continue
		}
		_, port, err := net.SplitHostPort(addr)
		i := slices.IndexFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == name })
		if err != nil || i < 0 || strconv.Itoa(int(c.Ports[i].ContainerPort)) != port {
			t.Errorf("container port %q %s, want the port of %s=%s", name, yamlOf(c.Ports), key, addr)
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
	checkSecrets(t, p)
	for name, res := range map[string]string{"GOMAXPROCS": "limits.cpu", "GOMEMLIMIT": "limits.memory"} {
		i := slices.IndexFunc(p.main.Env, func(e corev1.EnvVar) bool { return e.Name == name })
		if i < 0 || p.main.Env[i].ValueFrom == nil || p.main.Env[i].ValueFrom.ResourceFieldRef == nil ||
			p.main.Env[i].ValueFrom.ResourceFieldRef.Resource != res {
			t.Errorf("%s: want it from resourceFieldRef %s", name, res)
		}
	}
}

// checkRouting: the Service reaches the pods' public port, and both the
// Ingress and the HTTPRoute route to it alone, keeping streams open longer
// than the heartbeat; the internal port has a Service of its own that
// nothing routes to from outside.
func checkRouting(t *testing.T, m manifests, p bbsPod) {
	t.Helper()
	svc := m.Services["bbs"]
	if svc == nil || !selects(svc.Spec.Selector, p.d) || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.StrVal != "http" {
		t.Fatalf("Service bbs %s: want one port, to the pods' public port `http`", yamlOf(svc))
	}
	internal := m.Services["bbs-metrics"]
	if internal == nil || !selects(internal.Spec.Selector, p.d) || len(internal.Spec.Ports) != 1 ||
		internal.Spec.Ports[0].TargetPort.StrVal != "metrics" || internal.Spec.Type != "" && internal.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("Service bbs-metrics %s: want a ClusterIP Service to the pods' port `metrics`", yamlOf(internal))
	}
	for name, s := range m.Services {
		for _, sp := range s.Spec.Ports {
			if sp.TargetPort.StrVal == "metrics" && name != "bbs-metrics" {
				t.Errorf("Service %s exposes the internal port `metrics`", name)
			}
		}
	}
	heartbeat := podConfig(t, p).SSEHeartbeat

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
	// The edge terminates TLS, where browsers get HTTP/2 (bbs serves
	// HTTP/1.1, and browsers allow six HTTP/1.1 connections to a site).
	for _, r := range ing.Spec.Rules {
		if !slices.ContainsFunc(ing.Spec.TLS, func(tls networkingv1.IngressTLS) bool {
			return tls.SecretName != "" && slices.Contains(tls.Hosts, r.Host)
		}) {
			t.Errorf("Ingress: host %q has no TLS (no HTTP/2 for browsers without it)", r.Host)
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
// Secret points at their Services. No admin token is in the build: one
// written in the repository is known to everyone, and the Ingress and the
// HTTPRoute publish the board (before, dev-admin-token was).
func checkDev(t *testing.T, m manifests, p bbsPod) {
	t.Helper()
	if m.StatefulSets["postgres"] == nil || m.Deployments["redis"] == nil {
		t.Fatal("dev: want StatefulSet postgres and Deployment redis")
	}
	for name, s := range m.Secrets {
		if _, ok := s.Data["ADMIN_TOKEN"]; ok {
			t.Errorf("dev: Secret %s holds an ADMIN_TOKEN written in the repository", name)
		}
	}
	if _, ok := p.config["ADMIN_TOKEN"]; ok {
		t.Error("dev: the ConfigMap sets ADMIN_TOKEN")
	}
	i := slices.IndexFunc(p.main.Env, func(e corev1.EnvVar) bool { return e.Name == "ADMIN_TOKEN" })
	if i >= 0 {
		ref := p.main.Env[i].ValueFrom
		if p.main.Env[i].Value != "" || ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Optional == nil || !*ref.SecretKeyRef.Optional {
			t.Errorf("dev: ADMIN_TOKEN %s: want it from an optional Secret the user creates", yamlOf(p.main.Env[i]))
		}
	}
	for _, ref := range secretRefs(p) {
		if ref[2] == "optional" {
			continue
		}
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

// checkTrustedProxies: X-Forwarded-For is trusted from no range wider than
// a /16 (before, the default was 10.0.0.0/8: any pod of most clusters could
// claim to be any client). An overlay either names a range, or says
// `none`, or keeps the placeholder, which the server refuses, so the
// operator has to set it before a replica starts.
func checkTrustedProxies(t *testing.T, overlay string, p bbsPod) {
	t.Helper()
	v, ok := p.config["TRUSTED_PROXIES"]
	if !ok {
		t.Fatal("ConfigMap: no TRUSTED_PROXIES")
	}
	cfg, err := config.Load(func(k string) string { return p.config[k] })
	if err != nil {
		if !strings.Contains(err.Error(), "TRUSTED_PROXIES") || strings.Count(err.Error(), ";") > 0 {
			t.Errorf("%s: the ConfigMap is refused for more than TRUSTED_PROXIES: %v", overlay, err)
		}
		if overlay == "overlays/dev" {
			t.Errorf("dev: TRUSTED_PROXIES=%q is refused (%v): dev must start as it is", v, err)
		}
		return
	}
	for _, pf := range cfg.TrustedProxies {
		if pf.Addr().Is4() && pf.Bits() < 16 || pf.Addr().Is6() && pf.Bits() < 48 {
			t.Errorf("%s: TRUSTED_PROXIES %s trusts far more than an ingress controller's pods", overlay, pf)
		}
	}
}
