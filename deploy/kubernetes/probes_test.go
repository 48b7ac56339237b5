//go:build cgo

package kubernetes_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
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
	// Prometheus scrapes the pod's IP, not its loopback: the metrics listen on the
	// args' host (a wildcard in the pod) at a free port, and are scraped through
	// 127.0.0.2, an address of this machine that 127.0.0.1 is not. A server that
	// binds its metrics to 127.0.0.1 (atelierd does without TLS, unless
	// --metrics-public) fails here as it would fail Prometheus in the cluster.
	host, _, err := net.SplitHostPort(servertest.ParseArgs(t, c.Args)["metrics-listen"])
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(servertest.FreeLoopback(t))
	extra := servertest.PodArgs(t, c.Args, net.JoinHostPort(host, port), map[string]func(string) string{
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
	resp, err := http.Get("http://" + net.JoinHostPort("127.0.0.2", port) + a["prometheus.io/path"])
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "atelier_rpc_total") {
		t.Errorf("GET %s: %s, want Prometheus text with atelier_rpc_total:\n%s", a["prometheus.io/path"], resp.Status, body)
	}

	// The memory request is what the scheduler sets aside for a replica: one that
	// needs more at rest, every model loaded, would be squeezed by its neighbours.
	var rss int64
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, "process_resident_memory_bytes "); ok {
			rss, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	req := c.Resources.Requests.Memory()
	if rss <= 0 || rss > req.Value() {
		t.Errorf("resident memory with the models loaded is %d bytes, want some, and within the request of %v", rss, req)
	}
	t.Logf("measured: resident memory with the ConfigMap's models loaded: %.0f MiB (request %v, limit %v)",
		float64(rss)/(1<<20), req, c.Resources.Limits.Memory())
}

func TestMain(m *testing.M) { os.Exit(servertest.Main(m)) }
