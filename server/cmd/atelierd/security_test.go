package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/atelier-vision/atelier/internal/certs"
	"github.com/atelier-vision/atelier/internal/testcerts"
)

func TestSecurityFlags(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		err  string
	}{
		{"defaults", nil, nil, ""},
		{"cert without key", []string{"--tls-cert", "c.pem"}, nil, "go together"},
		{"client ca without tls", []string{"--tls-client-ca", "ca.pem"}, nil, "needs --tls-cert"},
		{"bad reflection", []string{"--reflection", "maybe"}, nil, "open, token or off"},
		{"negative rate", []string{"--rate-limit", "-1"}, nil, ">= 0"},
		{"negative connections", []string{"--max-connections", "-1"}, nil, "--max-connections and --max-connections-per-caller must be 0 (no limit) or more"},
		{"no handshake time", []string{"--handshake-timeout", "0s"}, nil, "--handshake-timeout must be positive"},
		{"negative idle", []string{"--max-connection-idle", "-1s"}, nil, "not negative"},
		{"tokens from the environment", nil, map[string]string{"ATELIER_AUTH_TOKENS_FILE": "/x"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, env(tc.env))
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("got %v, want %q", err, tc.err)
			}
			if tc.env["ATELIER_AUTH_TOKENS_FILE"] != "" && c.Security.TokensFile != "/x" {
				t.Fatalf("tokens file %q, want /x", c.Security.TokensFile)
			}
		})
	}
	c, _ := parseConfig(nil, env(nil))
	if c.Security.Reflection != "open" || c.Security.Admission.MaxStreams != 64 || c.Security.Admission.Rate != 0 ||
		c.Security.Connections.Max != 4096 || c.Security.Connections.PerCaller != 256 || c.Security.HandshakeTimeout != 10*time.Second {
		t.Fatalf("defaults %+v", c.Security)
	}
}

// TestMetricsListener: without TLS a wildcard address binds to loopback unless
// --metrics-public; with TLS the port speaks TLS.
func TestMetricsListener(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	listen := func(cfg securityConfig, addr string) net.Listener {
		t.Helper()
		s, err := newSecurity(cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		l, err := s.metricsListener(addr, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	if a := listen(securityConfig{ReloadInterval: 1}, ":0").Addr().(*net.TCPAddr); !a.IP.IsLoopback() {
		t.Fatalf("plaintext metrics on %v, want loopback", a)
	}
	public := listen(securityConfig{ReloadInterval: 1, MetricsPublic: true}, ":0")
	if a := public.Addr().(*net.TCPAddr); a.IP.IsLoopback() {
		t.Fatalf("--metrics-public metrics on %v, want every interface", a)
	}
	// ... and in plaintext: an HTTP client gets its answer.
	hs := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Second}
	go hs.Serve(public)
	defer hs.Close()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", public.Addr().(*net.TCPAddr).Port))
	if err != nil {
		t.Fatalf("plaintext HTTP to --metrics-public: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("plaintext HTTP to --metrics-public: %s, want the handler's 404", resp.Status)
	}
	ca := testcerts.NewCA(t, "m")
	p := ca.Issue(t, "server", testcerts.Options{})
	l := listen(securityConfig{ReloadInterval: 1, TLS: tlsFiles(p)}, "127.0.0.1:0")
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	conn, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	if err != nil {
		t.Fatalf("TLS to the metrics port: %v", err)
	}
	conn.Close()
}

// TestMetricsListenerOnAWildcardHostName binds the plaintext metrics port to a host
// name the system resolver turns into the wildcard ("0" is 0.0.0.0 to getaddrinfo),
// in a child process that uses that resolver: it must still end on loopback.
func TestMetricsListenerOnAWildcardHostName(t *testing.T) {
	if os.Getenv("ATELIER_TEST_WILDCARD_NAME") == "1" {
		s, err := newSecurity(securityConfig{ReloadInterval: 1}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		l, err := s.metricsListener("0:0", slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("bound=%s\n", l.Addr())
		l.Close()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMetricsListenerOnAWildcardHostName$", "-test.v")
	cmd.Env = append(os.Environ(), "ATELIER_TEST_WILDCARD_NAME=1", "GODEBUG=netdns=cgo")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`bound=(\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("child said no address:\n%s", out)
	}
	a, err := net.ResolveTCPAddr("tcp", string(m[1]))
	if err != nil || !a.IP.IsLoopback() {
		t.Fatalf("plaintext metrics on %s through a wildcard host name, want loopback (%v)", m[1], err)
	}
}

func TestNewSecurityRefusesBrokenFiles(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "tokens")
	os.WriteFile(bad, []byte("short infer\n"), 0o600)
	if _, err := newSecurity(securityConfig{ReloadInterval: 1, TokensFile: bad}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("a broken token file was accepted at start-up")
	}
	if _, err := newSecurity(securityConfig{ReloadInterval: 1, TLS: tlsFiles(testcerts.Pair{CertFile: bad, KeyFile: bad})}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("a broken certificate was accepted at start-up")
	}
}

func tlsFiles(p testcerts.Pair) certs.Files { return certs.Files{Cert: p.CertFile, Key: p.KeyFile} }

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// serveHealth serves grpc.health.v1 on lis with sec's server options until the test
// ends, and returns a plaintext connection to it.
func serveHealth(t *testing.T, sec *security, lis net.Listener) *grpc.ClientConn {
	t.Helper()
	s := grpc.NewServer(sec.grpc...)
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestMaxConnectionAge: an aged connection is closed after its grace and the client
// reconnects, so long-lived clients rebalance; no call fails.
func TestMaxConnectionAge(t *testing.T) {
	sec, err := newSecurity(securityConfig{ReloadInterval: 1, MaxConcurrentStreams: 100,
		MaxConnectionAge: 200 * time.Millisecond, MaxConnectionGrace: 100 * time.Millisecond}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis := &countingListener{Listener: inner}
	h := healthpb.NewHealthClient(serveHealth(t, sec, lis))
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := h.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			t.Fatalf("call failed across a connection's end of life: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := lis.n.Load(); n < 3 {
		t.Fatalf("%d connections in 2s with a 200ms maximum age, want several", n)
	}
}

// TestMaxHeaderBytes: a call whose metadata is over --max-header-bytes is refused
// before it reaches a handler (health here, which needs no token); a normal one passes.
func TestMaxHeaderBytes(t *testing.T) {
	c, err := parseConfig(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Security.MaxHeaderBytes != 64<<10 {
		t.Fatalf("default --max-header-bytes %d, want 65536", c.Security.MaxHeaderBytes)
	}
	if _, err := parseConfig([]string{"--max-header-bytes", "100"}, func(string) string { return "" }); err == nil {
		t.Fatal("--max-header-bytes 100 was accepted")
	}
	sec, err := newSecurity(c.Security, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := healthpb.NewHealthClient(serveHealth(t, sec, lis))
	for _, tc := range []struct {
		name  string
		bytes int
		ok    bool
	}{
		{"a token's worth", 600, true},
		{"a megabyte", 1 << 20, false},
		{"a normal call after the refusal", 600, true},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+strings.Repeat("a", tc.bytes))
		_, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if (err == nil) != tc.ok {
			t.Errorf("%s: got %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
