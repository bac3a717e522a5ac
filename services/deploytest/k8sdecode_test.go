package deploytest

import (
	"path/filepath"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// manifests are the objects one kustomization builds, decoded strictly into
// the Kubernetes API types, by name.
type manifests struct {
	Deployments  map[string]*appsv1.Deployment
	StatefulSets map[string]*appsv1.StatefulSet
	Services     map[string]*corev1.Service
	ConfigMaps   map[string]*corev1.ConfigMap
	Secrets      map[string]*corev1.Secret
	Namespaces   map[string]*corev1.Namespace
	Ingresses    map[string]*networkingv1.Ingress
	HPAs         map[string]*autoscalingv2.HorizontalPodAutoscaler
	PDBs         map[string]*policyv1.PodDisruptionBudget
	Jobs         map[string]*batchv1.Job
	HTTPRoutes   map[string]*gatewayv1.HTTPRoute
}

// kustomizeMu keeps kustomize builds one at a time: kyaml fills a global
// OpenAPI schema on first use without a lock, and two builds at once race
// on it (kubernetes-sigs/kustomize#5805; seen under -race in make test,
// the dev and prod overlays being built in parallel).
var kustomizeMu sync.Mutex

// kustomize builds k8s/<dir> with kustomize's Go API, as
// `kubectl apply -k` would, and decodes every object. An unknown field, a
// wrong type or a kind this test does not know fails the test.
func kustomize(t *testing.T, dir string) manifests {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	kustomizeMu.Lock()
	rm, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot(t), "k8s", dir))
	kustomizeMu.Unlock()
	if err != nil {
		t.Fatalf("kustomize build k8s/%s: %v", dir, err)
	}
	m := manifests{
		Deployments: map[string]*appsv1.Deployment{}, StatefulSets: map[string]*appsv1.StatefulSet{},
		Services: map[string]*corev1.Service{}, ConfigMaps: map[string]*corev1.ConfigMap{},
		Secrets: map[string]*corev1.Secret{}, Namespaces: map[string]*corev1.Namespace{},
		Ingresses: map[string]*networkingv1.Ingress{}, HPAs: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		PDBs: map[string]*policyv1.PodDisruptionBudget{}, Jobs: map[string]*batchv1.Job{},
		HTTPRoutes: map[string]*gatewayv1.HTTPRoute{},
	}
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		name, what := r.GetName(), r.GetApiVersion()+" "+r.GetKind()
		switch what {
		case "apps/v1 Deployment":
			m.Deployments[name] = decodeStrict[appsv1.Deployment](t, dir, y)
		case "apps/v1 StatefulSet":
			m.StatefulSets[name] = decodeStrict[appsv1.StatefulSet](t, dir, y)
		case "v1 Service":
			m.Services[name] = decodeStrict[corev1.Service](t, dir, y)
		case "v1 ConfigMap":
			m.ConfigMaps[name] = decodeStrict[corev1.ConfigMap](t, dir, y)
		case "v1 Secret":
			m.Secrets[name] = decodeStrict[corev1.Secret](t, dir, y)
		case "v1 Namespace":
			m.Namespaces[name] = decodeStrict[corev1.Namespace](t, dir, y)
		case "networking.k8s.io/v1 Ingress":
			m.Ingresses[name] = decodeStrict[networkingv1.Ingress](t, dir, y)
		case "autoscaling/v2 HorizontalPodAutoscaler":
			m.HPAs[name] = decodeStrict[autoscalingv2.HorizontalPodAutoscaler](t, dir, y)
		case "policy/v1 PodDisruptionBudget":
			m.PDBs[name] = decodeStrict[policyv1.PodDisruptionBudget](t, dir, y)
		case "batch/v1 Job":
			m.Jobs[name] = decodeStrict[batchv1.Job](t, dir, y)
		case "gateway.networking.k8s.io/v1 HTTPRoute":
			m.HTTPRoutes[name] = decodeStrict[gatewayv1.HTTPRoute](t, dir, y)
		default:
			t.Errorf("k8s/%s: %s %s: a kind this test does not decode; add it", dir, what, name)
		}
	}
	return m
}

func decodeStrict[T any](t *testing.T, dir string, y []byte) *T {
	t.Helper()
	v := new(T)
	if err := yaml.UnmarshalStrict(y, v); err != nil {
		t.Errorf("k8s/%s: %v\n%s", dir, err, y)
	}
	return v
}
