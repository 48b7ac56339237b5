package kubernetes_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/atelier-vision/atelier/deploy/manifest"
	"github.com/atelier-vision/atelier/internal/servertest"
)

// TestProbesAnswer runs atelierd with the Deployment's args and ConfigMap, on
// loopback ports instead of the pod's, and asks it what the kubelet and Prometheus
// would: every probe's health service answers SERVING, and the scrape path serves
// metrics.
func TestProbesAnswer(t *testing.T) {
	s, _ := base(t)
	d, c := server(t, s)
	for _, e := range c.EnvFrom {
		for k, v := range s.configMaps[e.ConfigMapRef.Name].Data {
			t.Setenv(k, v)
		}
	}
	metrics := servertest.FreeLoopback(t)
	extra := servertest.PodArgs(t, c.Args, metrics, map[string]func(string) string{
		"model-config": func(value string) string { // the ConfigMap's file, as the pod would see it
			file := filepath.Join(t.TempDir(), filepath.Base(value))
			if err := os.WriteFile(file, []byte(s.configMaps["atelier-model-config"].Data[filepath.Base(value)]), 0o644); err != nil {
				t.Fatal(err)
			}
			return file
		},
	})
	srv := servertest.Start(t, extra...)

	conn, err := grpc.NewClient("passthrough:///"+srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := healthpb.NewHealthClient(conn)
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		service := manifest.ProbeService(p)
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(max(p.TimeoutSeconds, 1))*time.Second)
		resp, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		cancel()
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("%s probe: Check(%q) = %v, %v; want SERVING", name, service, resp, err)
		}
	}

	a := d.Spec.Template.Annotations
	resp, err := http.Get("http://" + metrics + a["prometheus.io/path"])
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "atelier_rpc_total") {
		t.Errorf("GET %s: %s, want Prometheus text with atelier_rpc_total:\n%s", a["prometheus.io/path"], resp.Status, body)
	}
}

func TestMain(m *testing.M) { os.Exit(servertest.Main(m)) }
