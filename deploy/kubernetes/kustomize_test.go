package kubernetes_test

import (
	"os/exec"
	"testing"

	"github.com/atelier-vision/atelier/internal/testenv"
)

// build runs `kustomize build dir` (what `kubectl apply -k` applies) and decodes its
// output strictly.
func build(t *testing.T, dir string) *set {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "kustomize"), "build", dir).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("kustomize build %s: %v\n%s", dir, err, ee.Stderr)
		}
		t.Fatal(err)
	}
	objs, err := decodeAll("kustomize build "+dir, out)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSet(objs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestKustomizeBuild builds the default and the models-from-image kustomizations as
// kubectl apply -k would, and checks what each produces.
func TestKustomizeBuild(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		s := build(t, ".")
		d, c := server(t, s)
		if got := len(s.services) + len(s.configMaps) + len(s.pvcs) + len(s.pdbs) + len(s.hpas); got != 7 {
			t.Errorf("got %d objects beside the Deployment, want 2 Services, 2 ConfigMaps, a claim, a budget, an autoscaler", got)
		}
		if c.Image != "registry.example/atelier/atelierd:0.1.0" {
			t.Errorf("image %q, want the kustomization's images: entry applied", c.Image)
		}
		if d.Labels["app.kubernetes.io/part-of"] != "atelier" || d.Spec.Template.Labels["app.kubernetes.io/part-of"] != "atelier" {
			t.Errorf("labels %v / %v, want app.kubernetes.io/part-of on the object and its pods", d.Labels, d.Spec.Template.Labels)
		}
		if d.Spec.Selector.MatchLabels["app.kubernetes.io/part-of"] != "" {
			t.Error("the common label reached the selector, which cannot change after the first apply")
		}
	})
	t.Run("models from an image", func(t *testing.T) {
		s := build(t, "overlays/models-from-image")
		d, _ := server(t, s)
		if len(s.pvcs) != 0 {
			t.Errorf("the claim is still there: %v", s.pvcs)
		}
		pod := d.Spec.Template.Spec
		if len(pod.InitContainers) != 1 || pod.InitContainers[0].Image != "registry.example/atelier/atelier-models:0.1.0" {
			t.Fatalf("init containers %+v, want one copying from the models image", pod.InitContainers)
		}
		for _, v := range pod.Volumes {
			if v.Name == "models" && (v.EmptyDir == nil || v.PersistentVolumeClaim != nil) {
				t.Errorf("models volume %+v, want only an emptyDir", v)
			}
		}
		if m := pod.InitContainers[0].VolumeMounts; len(m) != 1 || m[0].Name != "models" || m[0].ReadOnly {
			t.Errorf("init container mounts %+v, want the models volume, writable", m)
		}
	})
}
