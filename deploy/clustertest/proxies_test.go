package clustertest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/client"
	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// haproxyConfig has two frontends over the three replicas: one that speaks HTTP/2
// (L7: it balances each call, each gRPC stream) and one that forwards TCP (L4: it
// balances each connection, as kube-proxy and a ClusterIP Service do).
func haproxyConfig(l7, l4 int, replicas []string) string {
	var h2, tcp strings.Builder
	for i, addr := range replicas {
		fmt.Fprintf(&h2, "  server r%d %s proto h2\n", i+1, addr)
		fmt.Fprintf(&tcp, "  server r%d %s\n", i+1, addr)
	}
	return fmt.Sprintf(`defaults
  timeout connect 2s
  timeout client 60s
  timeout server 60s

frontend grpc_l7
  mode http
  bind 127.0.0.1:%d proto h2
  default_backend replicas_l7

backend replicas_l7
  mode http
  balance roundrobin
%s
frontend tcp_l4
  mode tcp
  bind 127.0.0.1:%d
  default_backend replicas_l4

backend replicas_l4
  mode tcp
  balance roundrobin
%s`, l7, h2.String(), l4, tcp.String())
}

// proxies sends one client's calls, on one connection, through haproxy in L7 and in
// L4 mode: L7 spreads them over the replicas, L4 leaves them all on one.
func proxies(t *testing.T, c *cluster) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/haproxy"); serr == nil {
			bin = "/usr/sbin/haproxy"
		} else {
			testenv.Missing(t, "haproxy", "run `make setup` (it installs Debian's haproxy)")
		}
	}
	l7, l4 := freePort(t, "127.0.0.1"), 0
	for l4 == 0 || l4 == l7 {
		l4 = freePort(t, "127.0.0.1")
	}
	var addrs []string
	for _, ip := range ips {
		addrs = append(addrs, c.replicas[ip].addr)
	}
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(haproxyConfig(l7, l4, addrs)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	proxy := exec.Command(bin, "-db", "-f", cfg)
	logf, err := os.Create(cfg + ".log")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	proxy.Stdout, proxy.Stderr = logf, logf
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	log := func() string { b, _ := os.ReadFile(cfg + ".log"); return string(b) }
	defer func() { proxy.Process.Kill(); proxy.Wait() }()
	for _, p := range []int{l7, l4} {
		waitListening(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), log)
	}

	const calls = 150
	// through makes up to calls sequential calls through the proxy on port, those
	// that start within the given time of the first (all of them if 0), and returns
	// how many each replica answered.
	through := func(port int, within time.Duration) map[string]int {
		t.Helper()
		// One address: one connection, as any gRPC client keeps.
		cl, err := client.New(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		before := c.classified()
		first := time.Now()
		for range calls {
			if within > 0 && time.Since(first) > within {
				break
			}
			if _, err := cl.Classify(context.Background(), &pb.ClassifyRequest{Images: []*pb.Image{c.imageMsg}}); err != nil {
				t.Fatalf("through the proxy on :%d: %v\n%s", port, err, log())
			}
		}
		return delta(before, c.classified())
	}
	t.Run("L7 spreads one connection's calls", func(t *testing.T) {
		checkSpread(t, "haproxy L7 (mode http, proto h2), one client connection, sequential calls", through(l7, 0), ips...)
	})
	// Through L4, the replica's --max-connection-age ends the proxied connection
	// after maxConnectionAge (less 10% jitter), and the client's next one may go to
	// another replica: that is what the age is for. The contrast is within one
	// connection's life: the calls that start within 2/3 of it, which reach the
	// replica before its GOAWAY (calls in flight then would finish there too).
	t.Run("L4 sends them all to one replica", func(t *testing.T) {
		within := maxConnectionAge * 2 / 3
		d := through(l4, within)
		most, total := 0, 0
		for _, n := range d {
			most, total = max(most, n), total+n
		}
		if most != total || total < 30 {
			t.Errorf("replicas answered %v through the L4 proxy, want all of at least 30 calls on one", d)
		}
		t.Logf("measured: haproxy L4 (mode tcp), one client connection, %d sequential calls (those starting within %v, "+
			"before the replica's --max-connection-age of %v ends the connection): %v", total, within, maxConnectionAge, d)
	})
}

func waitListening(t *testing.T, addr string, log func() string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy not listening on %s after 10 s:\n%s", addr, log())
		}
	}
}
