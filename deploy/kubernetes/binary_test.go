//go:build cgo

package kubernetes_test

import (
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/atelier-vision/atelier/deploy/manifest"
	"github.com/atelier-vision/atelier/internal/servertest"
)

// TestDeploymentMatchesBinary checks the Deployment against atelierd --help: flags,
// variables, ports, probes and the shutdown timing.
func TestDeploymentMatchesBinary(t *testing.T) {
	s, k := base(t)
	d, c := server(t, s)
	flags := servertest.Flags(t)
	args := servertest.ParseArgs(t, c.Args)
	pod := d.Spec.Template

	t.Run("every arg is a flag", func(t *testing.T) {
		for name := range args {
			if _, ok := flags[name]; !ok {
				t.Errorf("args has --%s, which atelierd --help does not list", name)
			}
		}
	})
	t.Run("every config key is a flag's variable", func(t *testing.T) {
		vars := map[string]bool{}
		for _, v := range flags {
			vars[v] = true
		}
		if len(c.EnvFrom) == 0 {
			t.Fatal("the container takes no settings from a ConfigMap")
		}
		for _, e := range c.EnvFrom {
			if e.ConfigMapRef == nil {
				t.Fatalf("envFrom %+v is not a ConfigMap", e)
			}
			cm, ok := s.configMaps[e.ConfigMapRef.Name]
			if !ok {
				t.Fatalf("envFrom names ConfigMap %q, which the manifests do not define", e.ConfigMapRef.Name)
			}
			for key := range cm.Data {
				if !vars[key] {
					t.Errorf("ConfigMap %s sets %s, which is no flag's variable", cm.Name, key)
				}
			}
		}
		for _, e := range c.Env {
			if strings.HasPrefix(e.Name, "ATELIER_") && !vars[e.Name] {
				t.Errorf("env sets %s, which is no flag's variable", e.Name)
			}
		}
	})
	t.Run("connections age, so clients re-resolve and rebalance", func(t *testing.T) {
		var age string
		for _, e := range c.EnvFrom {
			if cm := s.configMaps[e.ConfigMapRef.Name]; cm != nil && cm.Data["ATELIER_MAX_CONNECTION_AGE"] != "" {
				age = cm.Data["ATELIER_MAX_CONNECTION_AGE"]
			}
		}
		if d, err := time.ParseDuration(age); err != nil || d <= 0 {
			t.Fatalf("ATELIER_MAX_CONNECTION_AGE is %q; want a positive duration, so that clients find new replicas", age)
		}
	})
	grpcPort, metricsPort := port(t, c, "grpc"), port(t, c, "metrics")
	t.Run("ports match the flags", func(t *testing.T) {
		if got := servertest.PortOf(t, "listen", args["listen"]); got != grpcPort {
			t.Errorf("--listen port %d, containerPort grpc %d", got, grpcPort)
		}
		if got := servertest.PortOf(t, "metrics-listen", args["metrics-listen"]); got != metricsPort {
			t.Errorf("--metrics-listen port %d, containerPort metrics %d", got, metricsPort)
		}
	})
	t.Run("probes are grpc on the grpc port", func(t *testing.T) {
		for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
			if problem := manifest.GRPCProbeProblem(name, p, grpcPort); problem != "" {
				t.Error(problem)
			}
		}
	})
	t.Run("shutdown fits the grace period", func(t *testing.T) {
		grace, err := time.ParseDuration(args["shutdown-grace"])
		if err != nil {
			t.Fatalf("--shutdown-grace must be set in args: %v", err)
		}
		if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
			t.Fatal("want a preStop sleep: the pod leaves the endpoints before SIGTERM")
		}
		sleep := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		r := c.ReadinessProbe
		if seen := time.Duration(r.PeriodSeconds*r.FailureThreshold) * time.Second; sleep < seen {
			t.Errorf("preStop sleeps %v, less than the %v readiness needs to see a drain", sleep, seen)
		}
		total := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
		if total < sleep+grace {
			t.Errorf("terminationGracePeriodSeconds %v < preStop %v + --shutdown-grace %v: SIGKILL would cut calls", total, sleep, grace)
		}
		if total > sleep+grace+10*time.Second {
			t.Errorf("terminationGracePeriodSeconds %v is far above preStop %v + --shutdown-grace %v", total, sleep, grace)
		}
	})
	t.Run("models come from a read-only volume", func(t *testing.T) {
		dir := args["model-dir"]
		i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == dir })
		if i < 0 || !c.VolumeMounts[i].ReadOnly {
			t.Fatalf("--model-dir=%s is not a read-only volume mount (%+v)", dir, c.VolumeMounts)
		}
		j := slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[i].Name })
		if j < 0 {
			t.Fatalf("volume %s is not defined", c.VolumeMounts[i].Name)
		}
		if pvc := pod.Spec.Volumes[j].PersistentVolumeClaim; pvc == nil || s.pvcs[pvc.ClaimName] == nil {
			t.Errorf("the models volume is not a claim the manifests define: %+v", pod.Spec.Volumes[j])
		}
	})
	t.Run("the model config is a mounted ConfigMap key", func(t *testing.T) {
		path := args["model-config"]
		dir, key := filepath.Dir(path), filepath.Base(path)
		i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == dir })
		if i < 0 {
			t.Fatalf("--model-config=%q is not in a volume mount (%+v)", path, c.VolumeMounts)
		}
		j := slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[i].Name })
		if j < 0 || pod.Spec.Volumes[j].ConfigMap == nil {
			t.Fatalf("volume %s is not a ConfigMap", c.VolumeMounts[i].Name)
		}
		cm := s.configMaps[pod.Spec.Volumes[j].ConfigMap.Name]
		if cm == nil || cm.Data[key] == "" {
			t.Fatalf("ConfigMap %s has no key %q", pod.Spec.Volumes[j].ConfigMap.Name, key)
		}
	})
	t.Run("non-root with a read-only root", func(t *testing.T) {
		ps, cs := pod.Spec.SecurityContext, c.SecurityContext
		if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser == 0 {
			t.Errorf("pod securityContext %+v must run as a non-root user", ps)
		}
		if cs == nil || cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem ||
			cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation {
			t.Errorf("container securityContext %+v must have a read-only root and no privilege escalation", cs)
		}
	})
	t.Run("resource requests", func(t *testing.T) {
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			t.Errorf("requests %v want cpu and memory", c.Resources.Requests)
		}
	})
	t.Run("TensorFlow's threads fit the CPU request", func(t *testing.T) {
		// 0 is TensorFlow's default, one thread per core of the node: 64 threads
		// contending for a 2-CPU request on a large node.
		env := map[string]string{}
		for _, e := range c.EnvFrom {
			if cm := s.configMaps[e.ConfigMapRef.Name]; cm != nil {
				maps.Copy(env, cm.Data)
			}
		}
		cores := c.Resources.Requests.Cpu().Value() // rounded up to whole cores
		intra, err1 := strconv.ParseInt(env["ATELIER_INTRA_OP_THREADS"], 10, 64)
		inter, err2 := strconv.ParseInt(env["ATELIER_INTER_OP_THREADS"], 10, 64)
		if err1 != nil || intra != cores {
			t.Errorf("ATELIER_INTRA_OP_THREADS=%q, want the CPU request, %d", env["ATELIER_INTRA_OP_THREADS"], cores)
		}
		if err2 != nil || inter == 0 || inter > cores {
			t.Errorf("ATELIER_INTER_OP_THREADS=%q, want 1..%d (or -1), not TensorFlow's one per node core", env["ATELIER_INTER_OP_THREADS"], cores)
		}
	})
	t.Run("scrape annotations name the metrics port", func(t *testing.T) {
		a := pod.Annotations
		if a["prometheus.io/scrape"] != "true" || a["prometheus.io/path"] != "/metrics" ||
			a["prometheus.io/port"] != strconv.Itoa(int(metricsPort)) {
			t.Errorf("annotations %v, want scrape true, path /metrics, port %d", a, metricsPort)
		}
	})
	t.Run("the image is the kustomization's", func(t *testing.T) {
		if !slices.ContainsFunc(k.Images, func(i struct {
			Name    string `json:"name"`
			NewName string `json:"newName,omitempty"`
			NewTag  string `json:"newTag,omitempty"`
		}) bool {
			return i.Name == c.Image
		}) {
			t.Errorf("image %q has no images: entry in kustomization.yaml", c.Image)
		}
	})
}
