package main

import (
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/atelier-vision/atelier/internal/testcerts"
)

// tlsHealthServer serves grpc.health.v1 with TLS on a loopback port, with a
// certificate for 127.0.0.1 from a CA of its own, whose PEM file it returns.
func tlsHealthServer(t *testing.T) (addr, caFile string) {
	t.Helper()
	cert, caFile := testcerts.LocalhostServer(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	healthpb.RegisterHealthServer(s, health.NewServer()) // SERVING by default
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String(), caFile
}

// plainHealthServer serves grpc.health.v1 in plaintext on a loopback port.
func plainHealthServer(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// TestTLSFlags: --tls-ca reaches a TLS server; plaintext and the system's roots do
// not, nor TLS a plaintext server, and each failure is one line that says what to do
// rather than grpc-go's nested wrappers.
func TestTLSFlags(t *testing.T) {
	addr, ca := tlsHealthServer(t)
	plain := plainHealthServer(t)
	cases := []struct {
		name     string
		addr     string
		args     []string
		wantExit int
		want     string
	}{
		{"trusted CA", addr, []string{"health", "--tls-ca", ca}, exitOK, "SERVING"},
		{"plaintext", addr, []string{"health"}, exitError, "UNAVAILABLE: cannot connect: error reading server preface: EOF (is the server serving TLS? then connect with --tls-ca FILE or --tls)"},
		{"system roots", addr, []string{"health", "--tls"}, exitError, "(trust the CA that signed the server's certificate with --tls-ca FILE)"},
		{"TLS to a plaintext server", plain, []string{"health", "--tls-ca", ca}, exitError, "(the server speaks plaintext: connect without --tls, --tls-ca and --tls-cert)"},
		{"server down", "127.0.0.1:1", []string{"health"}, exitError, "connection refused (is atelierd running at this address?)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := atelier(t, tc.addr, append(tc.args, "--timeout", "5s")...)
			if r.code != tc.wantExit || !strings.Contains(r.stdout+r.stderr, tc.want) {
				t.Fatalf("exit %d, output %q; want %d and %q", r.code, r.stdout+r.stderr, tc.wantExit, tc.want)
			}
			if r.code != exitOK && (strings.Count(r.stderr, "\n") != 1 || strings.Contains(r.stderr, "rpc error")) {
				t.Fatalf("stderr %q, want one line without grpc-go's wrappers", r.stderr)
			}
		})
	}
}
