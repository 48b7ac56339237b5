//go:build cgo

// Package kserve_test checks the KServe manifests in deploy/kserve: every document
// decodes strictly (an unknown or misspelt field is an error), the ServingRuntime's
// args are flags of the real atelierd and its ports and probes agree with them, the
// InferenceService asks for what the runtime supports, and atelierd started with the
// runtime's args answers the probes and the V2 protocol.
//
// KServe's own Go API (github.com/kserve/kserve) is not served by the module proxy
// here (`go list -m github.com/kserve/kserve@latest`: 403), and it would bring
// Knative and controller-runtime with it, so the fields these manifests use are
// declared below after KServe's v1alpha1 ServingRuntime and v1beta1
// InferenceService types, with the real Kubernetes types (corev1.Container,
// corev1.Volume) where KServe uses them. Strict decoding refuses any other field.
package kserve_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/atelier-vision/atelier/deploy/manifest"
	"github.com/atelier-vision/atelier/internal/servertest"
	"github.com/atelier-vision/atelier/internal/testenv"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

func TestMain(m *testing.M) { os.Exit(servertest.Main(m)) }

// servingRuntime is serving.kserve.io/v1alpha1 ServingRuntime, the fields used here.
type servingRuntime struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Annotations           map[string]string `json:"annotations,omitempty"`
		SupportedModelFormats []struct {
			Name       string  `json:"name"`
			Version    *string `json:"version,omitempty"`
			AutoSelect *bool   `json:"autoSelect,omitempty"`
			Priority   *int32  `json:"priority,omitempty"`
		} `json:"supportedModelFormats"`
		ProtocolVersions []string           `json:"protocolVersions,omitempty"`
		MultiModel       *bool              `json:"multiModel,omitempty"`
		Containers       []corev1.Container `json:"containers"`
		Volumes          []corev1.Volume    `json:"volumes,omitempty"`
	} `json:"spec"`
}

// inferenceService is serving.kserve.io/v1beta1 InferenceService, the fields used
// here; a predictor's model is a container too (KServe's ModelSpec inlines one).
type inferenceService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Predictor struct {
			MinReplicas *int32 `json:"minReplicas,omitempty"`
			MaxReplicas int32  `json:"maxReplicas,omitempty"`
			Model       *struct {
				ModelFormat struct {
					Name    string  `json:"name"`
					Version *string `json:"version,omitempty"`
				} `json:"modelFormat"`
				Runtime          *string `json:"runtime,omitempty"`
				ProtocolVersion  *string `json:"protocolVersion,omitempty"`
				StorageURI       *string `json:"storageUri,omitempty"`
				corev1.Container `json:",inline"`
			} `json:"model,omitempty"`
		} `json:"predictor"`
	} `json:"spec"`
}

// kustomization is the part of kustomize's format deploy/kserve uses.
type kustomization struct {
	metav1.TypeMeta `json:",inline"`
	Labels          []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels,omitempty"`
	Resources []string `json:"resources"`
	Images    []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images,omitempty"`
}

var kinds = manifest.Kinds{
	"serving.kserve.io/v1alpha1/ServingRuntime":     func() any { return &servingRuntime{} },
	"serving.kserve.io/v1beta1/InferenceService":    func() any { return &inferenceService{} },
	"kustomize.config.k8s.io/v1beta1/Kustomization": func() any { return &kustomization{} },
}

// decode decodes a YAML stream strictly into the types of kinds.
func decode(source string, data []byte) ([]any, error) {
	objs, err := manifest.Decode(source, data, kinds)
	var out []any
	for _, o := range objs {
		out = append(out, o.Value)
	}
	return out, err
}

// manifests decodes the kustomization and the files it lists.
func manifests(t *testing.T) (*servingRuntime, *inferenceService, *kustomization) {
	t.Helper()
	k := one[*kustomization](t, "kustomization.yaml")
	var rt *servingRuntime
	var isvc *inferenceService
	for _, r := range k.Resources {
		for _, o := range decodeFile(t, r) {
			switch o := o.(type) {
			case *servingRuntime:
				rt = o
			case *inferenceService:
				isvc = o
			}
		}
	}
	if rt == nil || isvc == nil {
		t.Fatalf("kustomization.yaml's resources %v hold no ServingRuntime and InferenceService", k.Resources)
	}
	return rt, isvc, k
}

func decodeFile(t *testing.T, path string) []any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode(path, data)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func one[T any](t *testing.T, path string) T {
	t.Helper()
	objs := decodeFile(t, path)
	v, ok := objs[0].(T)
	if len(objs) != 1 || !ok {
		t.Fatalf("%s: want one %T, got %v", path, v, objs)
	}
	return v
}

// TestStrictDecodingRefuses: each of these mistakes must fail to decode.
func TestStrictDecodingRefuses(t *testing.T) {
	rt := "apiVersion: serving.kserve.io/v1alpha1\nkind: ServingRuntime\nmetadata: {name: x}\nspec:\n"
	cases := map[string]string{
		"protocolVersion, singular":  rt + "  protocolVersion: grpc-v2\n",
		"a container field misspelt": rt + "  containers:\n    - name: a\n      arg: [--listen=:8500]\n",
		"a probe field misplaced":    rt + "  containers:\n    - name: a\n      readinessProbe:\n        grpc: {port: 1}\n        service: \"\"\n",
		"wrong type":                 rt + "  multiModel: \"no\"\n",
		"an isvc field of v1alpha1":  "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: x}\nspec:\n  predictor:\n    tensorflow: {storageUri: s3://x}\n",
		"an unknown kind":            "apiVersion: serving.kserve.io/v1alpha1\nkind: ClusterServingRuntime\nmetadata: {name: x}\n",
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			if objs, err := decode(name, []byte(doc)); err == nil {
				t.Fatalf("decoded %+v, want an error", objs)
			}
		})
	}
}

// TestEveryFileDecodes decodes every YAML file here and checks the kustomization
// lists every manifest.
func TestEveryFileDecodes(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	_, _, k := manifests(t)
	for _, f := range files {
		decodeFile(t, f)
		if f != "kustomization.yaml" && !slices.Contains(k.Resources, f) {
			t.Errorf("%s is not in kustomization.yaml's resources", f)
		}
	}
}

// container returns the runtime's container, which KServe merges with the
// InferenceService's model by its name.
func container(t *testing.T, rt *servingRuntime) *corev1.Container {
	t.Helper()
	if len(rt.Spec.Containers) != 1 || rt.Spec.Containers[0].Name != "kserve-container" {
		t.Fatalf("want one container named kserve-container, got %+v", rt.Spec.Containers)
	}
	return &rt.Spec.Containers[0]
}

// TestServingRuntimeMatchesBinary checks the runtime against atelierd --help and
// KServe's conventions.
func TestServingRuntimeMatchesBinary(t *testing.T) {
	rt, _, _ := manifests(t)
	c := container(t, rt)
	flags := servertest.Flags(t)
	args := servertest.ParseArgs(t, c.Args)
	if len(args) == 0 {
		t.Fatal("the container has no args")
	}
	for name := range args {
		if _, ok := flags[name]; !ok {
			t.Errorf("args has --%s, which atelierd --help does not list", name)
		}
	}
	if !slices.Contains(rt.Spec.ProtocolVersions, "grpc-v2") {
		t.Errorf("protocolVersions %v, want grpc-v2", rt.Spec.ProtocolVersions)
	}
	if len(rt.Spec.SupportedModelFormats) == 0 {
		t.Error("no supportedModelFormats")
	}
	if args["model-dir"] != "/mnt/models" {
		t.Errorf("--model-dir=%q, want /mnt/models, where KServe's storage initializer puts storageUri", args["model-dir"])
	}
	// Knative allows one container port; KServe sends gRPC to the one named h2c.
	if len(c.Ports) != 1 || c.Ports[0].Name != "h2c" {
		t.Fatalf("ports %+v, want one, named h2c", c.Ports)
	}
	grpcPort := c.Ports[0].ContainerPort
	if got := servertest.PortOf(t, "listen", args["listen"]); got != grpcPort {
		t.Errorf("--listen port %d, containerPort h2c %d", got, grpcPort)
	}
	// The startup probe holds liveness off while the models load (liveness alone would
	// restart a replica whose models take over its initial delay).
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if problem := manifest.GRPCProbeProblem(name, p, grpcPort); problem != "" {
			t.Error(problem)
		}
	}
	a := rt.Spec.Annotations
	if a["serving.kserve.io/enable-prometheus-scraping"] == "true" {
		if got := fmt.Sprint(servertest.PortOf(t, "metrics-listen", args["metrics-listen"])); a["prometheus.kserve.io/port"] != got {
			t.Errorf("prometheus.kserve.io/port %q, --metrics-listen port %s", a["prometheus.kserve.io/port"], got)
		}
		if args["metrics-public"] != "true" {
			t.Error("scraping is on but --metrics-public is not: without TLS the metrics bind to loopback")
		}
	}
	// TensorFlow's default, one thread per core, counts the node's cores, not the
	// pod's: on a large node dozens of threads would contend for the CPU request.
	cores := c.Resources.Requests.Cpu().Value()
	for _, name := range []string{"intra-op-threads", "inter-op-threads"} {
		if n, err := strconv.ParseInt(args[name], 10, 64); err != nil || n == 0 || n > cores {
			t.Errorf("--%s=%q, want 1..%d, the CPU request, not TensorFlow's one per node core", name, args[name], cores)
		}
	}
	mounts := map[string]bool{}
	for _, v := range rt.Spec.Volumes {
		mounts[v.Name] = true
	}
	for _, m := range c.VolumeMounts {
		if !mounts[m.Name] {
			t.Errorf("volumeMount %s names no volume of the runtime", m.Name)
		}
	}
}

// TestInferenceServiceUsesTheRuntime: the example asks for this runtime, a model
// format and a protocol it supports, and says where the models are.
func TestInferenceServiceUsesTheRuntime(t *testing.T) {
	rt, isvc, _ := manifests(t)
	m := isvc.Spec.Predictor.Model
	if m == nil {
		t.Fatal("the predictor has no model")
	}
	if m.Runtime == nil || *m.Runtime != rt.Name {
		t.Errorf("runtime %v, want %q", m.Runtime, rt.Name)
	}
	if m.ProtocolVersion == nil || !slices.Contains(rt.Spec.ProtocolVersions, *m.ProtocolVersion) || *m.ProtocolVersion != "grpc-v2" {
		t.Errorf("protocolVersion %v, want grpc-v2, one of the runtime's %v", m.ProtocolVersion, rt.Spec.ProtocolVersions)
	}
	supported := false
	for _, f := range rt.Spec.SupportedModelFormats {
		supported = supported || f.Name == m.ModelFormat.Name && (m.ModelFormat.Version == nil || f.Version != nil && *f.Version == *m.ModelFormat.Version)
	}
	if !supported {
		t.Errorf("modelFormat %s %v is not among the runtime's supportedModelFormats", m.ModelFormat.Name, m.ModelFormat.Version)
	}
	if m.StorageURI == nil || *m.StorageURI == "" {
		t.Error("no storageUri")
	}
}

// TestKustomizeBuild builds the folder as kubectl apply -k would: the output
// decodes strictly and the image is the kustomization's.
func TestKustomizeBuild(t *testing.T) {
	out, err := exec.Command(testenv.Tool(t, "kustomize"), "build", ".").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kustomize build: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	objs, err := decode("kustomize build", out)
	if err != nil {
		t.Fatal(err)
	}
	_, _, k := manifests(t)
	want := k.Images[0].NewName + ":" + k.Images[0].NewTag
	for _, o := range objs {
		if rt, ok := o.(*servingRuntime); ok {
			if got := container(t, rt).Image; got != want {
				t.Errorf("image %q, want %q", got, want)
			}
			return
		}
	}
	t.Fatal("kustomize build produced no ServingRuntime")
}

// TestRuntimeArgsServe runs atelierd with the runtime's args (on loopback ports and
// the built models instead of the pod's) and asks it what KServe and a V2 client
// would: the probes' health service, ServerReady, the example's model, the metrics.
func TestRuntimeArgsServe(t *testing.T) {
	rt, _, _ := manifests(t)
	c := container(t, rt)
	metrics := servertest.FreeLoopback(t)
	extra := servertest.PodArgs(t, c.Args, metrics, nil)
	srv := servertest.Start(t, extra...)
	conn, err := grpc.NewClient("passthrough:///"+srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	service := manifest.ProbeService(c.ReadinessProbe)
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("readiness probe's health check: got %v, %v, want SERVING", h, err)
	}
	v2 := oip.NewGRPCInferenceServiceClient(conn)
	if r, err := v2.ServerReady(ctx, &oip.ServerReadyRequest{}); err != nil || !r.Ready {
		t.Fatalf("ServerReady: got %v, %v, want ready", r, err)
	}
	if r, err := v2.ModelReady(ctx, &oip.ModelReadyRequest{Name: "classifier"}); err != nil || !r.Ready {
		t.Fatalf("ModelReady(classifier): got %v, %v, want ready", r, err)
	}
	resp, err := http.Get("http://" + metrics + rt.Spec.Annotations["prometheus.kserve.io/path"])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "atelier_") {
		t.Fatalf("the scrape path answered %s:\n%.300s", resp.Status, body)
	}
}
