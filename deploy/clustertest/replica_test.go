package clustertest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

const classifyMethod = "/atelier.v1.ClassifyService/Classify"

// replica is one atelierd process: a pod with its own IP, on the port all share.
type replica struct {
	ip, addr, metrics string
	log               string
	cmd               *exec.Cmd
	exited            chan struct{}
}

const sigkill, sigterm = syscall.SIGKILL, syscall.SIGTERM

const (
	// shutdownGrace is the replicas' --shutdown-grace: how long a SIGTERM drain may
	// wait for in-flight calls before it stops the rest.
	shutdownGrace = 5 * time.Second
	// maxConnectionAge is the replicas' --max-connection-age, the manifests' 5 minutes
	// scaled down: every client connection gets a GOAWAY after it (±10%), so that a
	// client that looks the name up only when a connection closes (gRPC's own DNS
	// resolvers, the Python client's) finds replicas added since. Its grace is longer
	// than any stream here, which must not be cut by it.
	maxConnectionAge, maxConnectionAgeGrace = 3 * time.Second, time.Minute
)

// launchReplica runs atelierd on ip:port (metrics on ip:metricsPort), logging into
// logDir, and waits until it reports SERVING.
func launchReplica(bin, modelDir, ip string, port, metricsPort int, logDir string) (*replica, error) {
	r := &replica{ip: ip, addr: net.JoinHostPort(ip, strconv.Itoa(port)),
		metrics: net.JoinHostPort(ip, strconv.Itoa(metricsPort)),
		log:     filepath.Join(logDir, "atelierd-"+ip+".log")}
	logf, err := os.Create(r.log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	r.cmd = exec.Command(bin, "--listen", r.addr, "--metrics-listen", r.metrics, "--model-dir", modelDir,
		"--shutdown-grace", shutdownGrace.String(),
		"--max-connection-age", maxConnectionAge.String(), "--max-connection-age-grace", maxConnectionAgeGrace.String(),
		"--intra-op-threads", "1", "--inter-op-threads", "1")
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	r.exited = make(chan struct{})
	go func() { r.cmd.Wait(); close(r.exited) }()
	if err := r.waitServing(60 * time.Second); err != nil {
		r.stop(sigkill)
		b, _ := os.ReadFile(r.log)
		return nil, fmt.Errorf("replica %s: %v\n%s", ip, err, b)
	}
	return r, nil
}

func (r *replica) waitServing(limit time.Duration) error {
	conn, err := grpc.NewClient("passthrough:///"+r.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	h := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.Status == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-r.exited:
			return fmt.Errorf("exited before serving")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not SERVING after %v: %v", limit, err)
		}
	}
}

// stop sends sig and waits for the process to end (up to 20 s, then SIGKILL); it
// returns how long the process took.
func (r *replica) stop(sig syscall.Signal) time.Duration {
	start := time.Now()
	select {
	case <-r.exited:
		return 0
	default:
	}
	r.cmd.Process.Signal(sig)
	select {
	case <-r.exited:
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
		<-r.exited
	}
	return time.Since(start)
}

// The series of /metrics read here: Classify and GetModel calls answered OK, and the
// ClassifyStreams open.
const (
	classifiedSeries  = `atelier_rpc_total{method="` + classifyMethod + `",code="OK"}`
	getModelSeries    = `atelier_rpc_total{method="/atelier.v1.ModelService/GetModel",code="OK"}`
	streamsOpenSeries = `atelier_rpc_in_flight{method="/atelier.v1.ClassifyService/ClassifyStream"}`
)

func (r *replica) metric(series string) (int, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + r.metrics + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, sc.Err() // a counter not yet seen is 0
}

// freePort finds a port free on every ip, for replicas that share it.
func freePort(t *testing.T, ips ...string) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		ok := true
		var held []net.Listener
		for _, ip := range ips[1:] {
			l2, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l2)
		}
		l.Close()
		for _, h := range held {
			h.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no port free on every replica address")
	return 0
}
