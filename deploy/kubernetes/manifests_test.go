package kubernetes_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// base decodes the base kustomization's resources strictly.
func base(t *testing.T) (*set, *kustomization) {
	t.Helper()
	objs, k, err := baseObjects("base")
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSet(objs)
	if err != nil {
		t.Fatal(err)
	}
	return s, k
}

// server returns the atelierd Deployment and its container.
func server(t *testing.T, s *set) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	d, ok := s.deployments["atelierd"]
	if !ok || len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want a Deployment atelierd with one container, got %v", s.deployments)
	}
	return d, &d.Spec.Template.Spec.Containers[0]
}

func port(t *testing.T, c *corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, name)
	return 0
}

// TestStrictDecodingRefuses shows the decoder is strict: each of these must fail.
func TestStrictDecodingRefuses(t *testing.T) {
	cases := []struct{ name, doc string }{
		{"misspelt field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicass: 3\n"},
		{"field of another kind", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  replicas: 3\n"},
		{"duplicate field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {A: \"1\"}\ndata: {B: \"2\"}\n"},
		{"unknown kind", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n"},
		{"wrong type", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: three\n"},
		{"probe field in the wrong place", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n        - name: a\n          readinessProbe:\n            grpc: {port: 1}\n            service: \"\"\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if objs, err := decodeAll(tc.name, []byte(tc.doc)); err == nil {
				t.Fatalf("decoded %v, want an error", objs[0].Value)
			}
		})
	}
}

// TestEveryFileDecodes decodes every YAML file under deploy/kubernetes strictly, and
// checks the base kustomization lists every manifest beside it.
func TestEveryFileDecodes(t *testing.T) {
	var files []string
	filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return err
	})
	if len(files) < 8 {
		t.Fatalf("found %d YAML files %v, want the whole deployment", len(files), files)
	}
	for _, f := range files {
		if _, err := decodeFile(f); err != nil {
			t.Error(err)
		}
	}
	_, k := base(t)
	top, _ := filepath.Glob("base/*.yaml")
	for _, f := range top {
		if f = filepath.Base(f); f != "kustomization.yaml" && !slices.Contains(k.Resources, f) {
			t.Errorf("%s is not in kustomization.yaml's resources", f)
		}
	}
}

// TestServicesBudgetAutoscaler checks what surrounds the Deployment selects its pods.
func TestServicesBudgetAutoscaler(t *testing.T) {
	s, _ := base(t)
	d, c := server(t, s)
	podLabels := labels.Set(d.Spec.Template.Labels)
	sel, err := metaSelector(d)
	if err != nil || !sel.Matches(podLabels) {
		t.Fatalf("the Deployment's selector %v does not match its pods %v", d.Spec.Selector, podLabels)
	}
	var headless, clusterIP int
	for _, svc := range s.services {
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) || len(svc.Spec.Selector) == 0 {
			t.Errorf("Service %s selector %v does not select the pods", svc.Name, svc.Spec.Selector)
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.StrVal == "" || port(t, c, p.TargetPort.StrVal) == 0 {
				t.Errorf("Service %s port %s targets %v, want a named container port", svc.Name, p.Name, p.TargetPort)
			}
		}
		switch svc.Spec.ClusterIP {
		case corev1.ClusterIPNone:
			headless++
			if svc.Spec.PublishNotReadyAddresses {
				t.Errorf("headless Service %s publishes pods that are not ready", svc.Name)
			}
		case "":
			clusterIP++
		}
	}
	if headless != 1 || clusterIP != 1 {
		t.Errorf("got %d headless and %d ClusterIP Services, want one of each", headless, clusterIP)
	}
	if len(s.pdbs) != 1 {
		t.Fatalf("want one PodDisruptionBudget, got %d", len(s.pdbs))
	}
	for _, pdb := range s.pdbs {
		ps, err := metaSelectorOf(pdb.Spec.Selector)
		if err != nil || !ps.Matches(podLabels) {
			t.Errorf("PodDisruptionBudget %s does not select the pods", pdb.Name)
		}
		if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() >= int(*d.Spec.Replicas) {
			t.Errorf("PodDisruptionBudget %s allows %v unavailable of %d replicas", pdb.Name, pdb.Spec.MaxUnavailable, *d.Spec.Replicas)
		}
	}
	if len(s.hpas) != 1 {
		t.Fatalf("want one HorizontalPodAutoscaler, got %d", len(s.hpas))
	}
	for _, h := range s.hpas {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.Name != d.Name {
			t.Errorf("HorizontalPodAutoscaler %s scales %s %s, want Deployment %s", h.Name, ref.Kind, ref.Name, d.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || *h.Spec.MinReplicas > *d.Spec.Replicas {
			t.Errorf("HorizontalPodAutoscaler %s minReplicas %v, want 2..%d", h.Name, h.Spec.MinReplicas, *d.Spec.Replicas)
		}
		if len(h.Spec.Metrics) == 0 || h.Spec.Metrics[0].Resource == nil || h.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
			t.Errorf("HorizontalPodAutoscaler %s does not scale on CPU", h.Name)
		}
		if c.Resources.Requests.Cpu().IsZero() {
			t.Error("CPU utilisation needs a CPU request")
		}
	}
}
