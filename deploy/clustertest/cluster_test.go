// Package clustertest runs Atelier as Kubernetes would behind a headless Service, on
// loopback: three atelierd replicas on 127.0.0.2, .3 and .4 at the same port (the pod
// IPs), a DNS server answering the Service's name with the replicas that are up, and
// the Go client, the CLI and the Python client dialing dns:///<name> under load while
// replicas drain, die and come back. An L7 proxy (haproxy) is set against an L4 one.
// `make test-cluster` runs it; the numbers it logs ("measured:") are in docs/DEPLOY.md.
package clustertest

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/client"
	"github.com/atelier-vision/atelier/internal/dnstest"
	"github.com/atelier-vision/atelier/internal/servertest"
	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// service is the headless Service's DNS name.
const service = "atelier-headless.shop.svc.cluster.local"

var ips = []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}

func TestMain(m *testing.M) { os.Exit(servertest.Main(m)) }

// cluster is the replicas, the DNS server in front of them and the built binaries.
type cluster struct {
	t                 *testing.T
	root              string
	bin, cli          string
	modelDirs         map[string]string // by IP: each replica's own model repository
	classifierV1      string            // the built classifier's version folder
	port, metricsPort int
	dns               *dnstest.Server
	replicas          map[string]*replica // by IP
	target            string              // dns://<dns server>/<service>:<port>
	image             string              // a PNG every call classifies
	imageMsg          *pb.Image
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	if err := servertest.Check(); err != nil {
		var m *servertest.MissingError
		if errors.As(err, &m) {
			testenv.Missing(t, m.What, m.Fix)
		}
		t.Fatal(err)
	}
	c := &cluster{t: t, root: testenv.Root(t), replicas: map[string]*replica{}}
	var err error
	if c.bin, err = servertest.Binary(); err != nil {
		t.Fatal(err)
	}
	c.cli = filepath.Join(t.TempDir(), "atelier")
	if out, err := exec.Command("go", "build", "-o", c.cli, "github.com/atelier-vision/atelier/client/cmd/atelier").CombinedOutput(); err != nil {
		t.Fatalf("building the CLI: %v\n%s", err, out)
	}
	// Each replica serves the classifier only (the calls here are about routing), from
	// its own repository, so that a new version can roll out one replica at a time.
	versions, _ := filepath.Glob(filepath.Join(testenv.ModelDir(t, "classifier"), "classifier", "[0-9]*"))
	if len(versions) == 0 {
		t.Fatal("no classifier version folder")
	}
	c.classifierV1 = versions[0]
	c.modelDirs = map[string]string{}
	for _, ip := range ips {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "classifier"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(c.classifierV1, filepath.Join(dir, "classifier", "1")); err != nil {
			t.Fatal(err)
		}
		c.modelDirs[ip] = dir
	}
	c.image = filepath.Join(c.root, "docs", "images", "sample_boot.png")
	if c.imageMsg, err = client.ImageFile(c.image); err != nil {
		t.Fatal(err)
	}
	c.port, c.metricsPort = freePort(t, ips...), 0
	for c.metricsPort == 0 || c.metricsPort == c.port {
		c.metricsPort = freePort(t, ips...)
	}
	if c.dns, err = dnstest.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.dns.Close)
	c.target = fmt.Sprintf("dns://%s/%s:%d", c.dns.Addr, service, c.port)
	c.start(ips...)
	c.publish(ips...)
	return c
}

// start launches replicas on ips at once and waits until each is SERVING.
func (c *cluster) start(ips ...string) {
	c.t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, ip := range ips {
		wg.Go(func() {
			r, err := launchReplica(c.bin, c.modelDirs[ip], ip, c.port, c.metricsPort, c.t.TempDir())
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			c.replicas[ip] = r
			c.t.Cleanup(func() { r.stop(sigkill) })
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		c.t.Fatal(errs)
	}
}

// publish makes the Service's name answer with ips, as the endpoints controller does
// when pods become ready or go away.
func (c *cluster) publish(ips ...string) {
	var addrs []netip.Addr
	for _, ip := range ips {
		addrs = append(addrs, netip.MustParseAddr(ip))
	}
	c.dns.Set(service, addrs...)
}

// up returns the replicas whose process runs, in the order of ips: what the
// endpoints controller lists once a pod is gone.
func (c *cluster) up() []string {
	var out []string
	for _, ip := range ips {
		if r := c.replicas[ip]; r != nil {
			select {
			case <-r.exited:
			default:
				out = append(out, ip)
			}
		}
	}
	return out
}

// classified snapshots every live replica's count of answered Classify calls.
func (c *cluster) classified() map[string]int {
	c.t.Helper()
	return c.counts(classifiedSeries)
}

func delta(before, after map[string]int) map[string]int {
	d := map[string]int{}
	for ip, n := range after {
		d[ip] = n - before[ip]
	}
	return d
}

// checkSpread wants each of ips within ±10% of an equal share of the calls.
func checkSpread(t *testing.T, who string, byIP map[string]int, ips ...string) {
	t.Helper()
	total := 0
	for _, n := range byIP {
		total += n
	}
	fair := float64(total) / float64(len(ips))
	var parts []string
	for _, ip := range ips {
		n := byIP[ip]
		parts = append(parts, fmt.Sprintf("%s %d (%.1f%%)", ip, n, 100*float64(n)/float64(total)))
		if d := float64(n) - fair; d > 0.1*fair || d < -0.1*fair {
			t.Errorf("%s: %s answered %d of %d calls, want %.0f±10%%", who, ip, n, total, fair)
		}
	}
	if total < 30*len(ips) {
		t.Errorf("%s: only %d calls, too few to judge a spread", who, total)
	}
	t.Logf("measured: %s spread over %d calls: %s", who, total, strings.Join(parts, ", "))
}

// images writes n links to the sample image into a new folder, for the CLI.
func (c *cluster) images(n int) string {
	dir := c.t.TempDir()
	for i := range n {
		if err := os.Symlink(c.image, filepath.Join(dir, fmt.Sprintf("frame-%05d.png", i+1))); err != nil {
			c.t.Fatal(err)
		}
	}
	return dir
}

// cliCommand is the CLI against the Service's name.
func (c *cluster) cliCommand(args ...string) *exec.Cmd {
	cmd := exec.Command(c.cli, append(args, "--addr", c.target, "--insecure")...)
	cmd.Env = append(os.Environ(), "ATELIER_ADDR=")
	return cmd
}

// python is one of the Python scripts beside this file, run with args on this
// checkout's Python client (whichever one the environment installed).
func (c *cluster) python(script string, args ...string) *exec.Cmd {
	cmd := exec.Command(testenv.Python(c.t), append([]string{filepath.Join(c.root, "deploy", "clustertest", script)}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(c.root, "client", "python", "src"))
	return cmd
}

// pythonLoad starts load.py for seconds with threads; wait returns its report once
// it ends. It returns when the client has made its first call.
func (c *cluster) pythonLoad(target string, seconds float64, threads int) (wait func() pyReport) {
	c.t.Helper()
	cmd := c.python("load.py", target, c.image, fmt.Sprint(seconds), fmt.Sprint(threads))
	w := startPython(c.t, cmd, nil)
	return func() (r pyReport) { w(&r); return r }
}

// pyModelLoad is load.py run with "get_model": its calls are the only GetModel
// calls the replicas see, so that their counts are this client's spread.
type pyModelLoad struct {
	stop func() error // closes its stdin: it stops calling
	wait func() pyReport
}

// pythonModelLoad starts load.py with "get_model" for at most seconds, with threads;
// it returns when the client has made its first call. stop ends it sooner.
func (c *cluster) pythonModelLoad(t *testing.T, seconds float64, threads int) *pyModelLoad {
	t.Helper()
	cmd := c.python("load.py", c.target, c.image, fmt.Sprint(seconds), fmt.Sprint(threads), "get_model")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	w := startPython(t, cmd, nil)
	return &pyModelLoad{stop: stdin.Close, wait: func() (r pyReport) { w(&r); return r }}
}

// counts snapshots every live replica's value of one series of /metrics.
func (c *cluster) counts(series string) map[string]int {
	c.t.Helper()
	out := map[string]int{}
	for ip, r := range c.replicas {
		select {
		case <-r.exited:
			continue
		default:
		}
		n, err := r.metric(series)
		if err != nil {
			c.t.Fatalf("metrics of %s: %v", ip, err)
		}
		out[ip] = n
	}
	return out
}

// withTimeout runs f and fails the test if it takes longer than limit.
func withTimeout(t *testing.T, limit time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("%s took more than %v", what, limit)
	}
}
