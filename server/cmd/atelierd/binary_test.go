package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/internal/testenv"
)

// TestBinaryServesAndStopsOnSIGTERM builds atelierd, runs it as users do (without
// LD_LIBRARY_PATH), waits for SERVING, and checks that SIGTERM stops it cleanly.
func TestBinaryServesAndStopsOnSIGTERM(t *testing.T) {
	cmd, _, logs := startBinary(t)
	checkMetrics(t, logs.String())

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("atelierd exited with %v after SIGTERM\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("atelierd still running 20s after SIGTERM\n%s", logs.String())
	}
	for _, want := range []string{"starting atelierd", "model version available", "serving", "shutting down", "stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("log lacks %q:\n%s", want, logs.String())
		}
	}
	// TensorFlow's info lines (its loader's, the bf16 rewrite's) stay out at the
	// default --tf-log-level 2. Only the one TensorFlow writes as its library loads,
	// before any level is read (oneDNN's, from port.cc), is left.
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.HasPrefix(line, "I0000") && !strings.Contains(line, "port.cc") {
			t.Fatalf("a TensorFlow info line at --tf-log-level 2: %s\n%s", line, logs.String())
		}
	}
}

// startBinary builds atelierd and runs it as users do (without LD_LIBRARY_PATH) on the
// classifier with the given extra flags until the test ends; it returns once the
// server is SERVING, with its address and its log.
func startBinary(t *testing.T, flags ...string) (*exec.Cmd, string, *testenv.Buffer) {
	t.Helper()
	return launchBinary(t, insecure.NewCredentials(), flags...)
}

// launchBinary is startBinary for a server whose health check is reached with creds
// (TLS, say).
func launchBinary(t *testing.T, creds credentials.TransportCredentials, flags ...string) (*exec.Cmd, string, *testenv.Buffer) {
	t.Helper()
	modelDir := testenv.ModelDir(t, "classifier")
	bin := filepath.Join(t.TempDir(), "atelierd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()

	cmd := exec.Command(bin, append([]string{"--listen", addr, "--model-dir", modelDir, "--metrics-listen", "127.0.0.1:0"}, flags...)...)
	// As users run it: no LD_LIBRARY_PATH, Go's default GOGC under the heap floor, and
	// no TF_CPP_MIN_LOG_LEVEL (atelierd sets --tf-log-level's before TensorFlow loads).
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH=", "GOGC=", "TF_CPP_MIN_LOG_LEVEL=")
	logs := &testenv.Buffer{} // read while atelierd writes it
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := h.Check(ctxFor(t, 2*time.Second), &healthpb.HealthCheckRequest{})
		if err == nil && resp.Status == healthpb.HealthCheckResponse_SERVING {
			return cmd, addr, logs
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not SERVING after 60s (last: %v, %v)\n%s", resp, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkMetrics finds the metrics address in the log and checks /metrics answers.
func checkMetrics(t *testing.T, logs string) {
	t.Helper()
	m := regexp.MustCompile(`msg=metrics address=(\S+)`).FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", logs)
	}
	resp, err := http.Get("http://" + m[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"atelier_goroutines", "process_resident_memory_bytes", `atelier_batch_runs_total{model="classifier",version="1"}`, "atelier_rpc_total"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, body)
		}
	}
	// The models have run (warm-up at least): TensorFlow's share of the CPU is positive
	// and no more than the whole process's.
	value := func(name string) float64 {
		m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(string(body))
		if m == nil {
			t.Fatalf("/metrics lacks %s:\n%s", name, body)
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if session, process := value("atelier_tensorflow_cpu_seconds_total"), value("process_cpu_seconds_total"); session <= 0 || session > process {
		t.Fatalf("TensorFlow CPU %gs, process CPU %gs: want 0 < TensorFlow <= process", session, process)
	}
	// The live heap is a few MB, well under the heap floor: the collector's goal is
	// held up at the floor, not at twice the live heap.
	if goal, live := value("go_gc_heap_goal_bytes"), value("go_gc_heap_live_bytes"); goal < 0.9*defaultGCHeapFloorMiB*(1<<20) || live > defaultGCHeapFloorMiB*(1<<20)/4 {
		t.Fatalf("heap goal %g MiB for %g MiB live, want about the %d MiB floor", goal/(1<<20), live/(1<<20), defaultGCHeapFloorMiB)
	}
}

// TestBinaryLimitsConnections: a connection that sends nothing is closed after
// --handshake-timeout, and one client address holds at most
// --max-connections-per-caller connections: gRPC clients beyond it get UNAVAILABLE at
// once while another address is served, and /metrics and the log say so.
func TestBinaryLimitsConnections(t *testing.T) {
	_, addr, logs := startBinary(t, "--max-connections-per-caller", "3", "--handshake-timeout", "500ms")
	m := regexp.MustCompile(`msg=metrics address=(\S+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", logs.String())
	}
	metricsURL := "http://" + m[1]
	waitOpen := func(want float64) exposition {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			e := scrape(t, metricsURL)
			if e.samples["atelier_connections_open"] == want {
				return e
			}
			if time.Now().After(deadline) {
				t.Fatalf("atelier_connections_open %v after 10 s, want %v", e.samples["atelier_connections_open"], want)
			}
		}
	}
	waitOpen(0) // startBinary's health connection has ended

	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	silent.SetReadDeadline(start.Add(10 * time.Second))
	// The server speaks first (its HTTP/2 settings), then waits for the client's preface.
	if _, err := io.Copy(io.Discard, silent); err != nil {
		t.Fatalf("a connection that sent nothing: %v, want the server to close it", err)
	}
	if took := time.Since(start); took < 400*time.Millisecond || took > 5*time.Second {
		t.Fatalf("a silent connection was closed after %v, want about --handshake-timeout 500ms", took)
	}

	check := func(from string) error {
		t.Helper()
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
				return d.DialContext(ctx, "tcp", addr)
			}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() }) // held open until the test ends
		_, err = healthpb.NewHealthClient(conn).Check(ctxFor(t, 5*time.Second), &healthpb.HealthCheckRequest{})
		return err
	}
	for i := range 3 {
		if err := check("127.0.0.1"); err != nil {
			t.Fatalf("connection %d of 3 from one address: %v", i+1, err)
		}
	}
	if err := check("127.0.0.1"); status.Code(err) != codes.Unavailable {
		t.Fatalf("a 4th connection from one address: got %v, want UNAVAILABLE", err)
	}
	if err := check("127.0.0.2"); err != nil {
		t.Fatalf("another address: %v", err)
	}
	e := waitOpen(4)
	if n := e.samples[`atelier_connections_refused_total{limit="caller"}`]; n < 1 {
		t.Errorf(`atelier_connections_refused_total{limit="caller"} %v, want at least 1`, n)
	}
	if !strings.Contains(logs.String(), `msg="connection refused"`) || !strings.Contains(logs.String(), `limit="--max-connections-per-caller 3"`) {
		t.Errorf("no log line of the refusal naming the limit:\n%s", logs.String())
	}
}
