package dashboard

import (
	"context"
	"crypto/tls"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/testcerts"
)

// serveDashboard serves d's page as the CLI does (HTTPServer, Serve) on a loopback
// port until the test ends, and returns its address.
func serveDashboard(t *testing.T, d *Dashboard) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base, stop := context.WithCancel(context.Background())
	srv := d.HTTPServer(base)
	served := make(chan struct{})
	go func() { d.Serve(srv, ln); close(served) }()
	t.Cleanup(func() { stop(); srv.Close(); <-served })
	return ln.Addr().String()
}

// serial returns the serial number of the certificate a new TLS handshake gets.
func serial(t *testing.T, addr string, cfg *tls.Config) *big.Int {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}

// TestPageOverTLS serves the page over TLS from certificate files: HTTP/2 and
// HTTP/1.1 work, TLS 1.1 is refused (and the refusals' log lines are bounded), a
// certificate swapped on disk is what new
// handshakes get, and a broken new file is refused with a log line while the
// previous certificate keeps serving.
func TestPageOverTLS(t *testing.T) {
	ca := testcerts.NewCA(t, "page")
	first := ca.Issue(t, "dashboard", testcerts.Options{})
	var log logBuffer
	d := quietDashboard(t, func(c *Config) { c.TLSCert, c.TLSKey, c.Log = first.CertFile, first.KeyFile, log.logger() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.watchFiles(ctx)
	addr := serveDashboard(t, d)
	clientTLS := testcerts.ClientConfig(t, ca, nil)

	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{TLSClientConfig: clientTLS.Clone(), ForceAttemptHTTP2: h2}
		resp, err := (&http.Client{Transport: tr}).Get("https://" + addr + "/")
		if err != nil {
			t.Fatalf("GET over TLS: %v", err)
		}
		resp.Body.Close()
		want := map[bool]string{true: "HTTP/2.0", false: "HTTP/1.1"}[h2]
		if resp.StatusCode != http.StatusOK || resp.Proto != want {
			t.Errorf("GET over TLS: %s %s, want 200 %s", resp.Proto, resp.Status, want)
		}
		tr.CloseIdleConnections()
	}
	if resp, err := http.Get("http://" + addr + "/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP to the TLS port was served")
		}
	}
	old := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	if conn, err := tls.Dial("tcp", addr, old); err == nil {
		conn.Close()
		t.Error("a TLS 1.1 client was let in")
	} else if !strings.Contains(err.Error(), "remote error: tls: protocol version not supported") {
		t.Errorf("a TLS 1.1 client: %v, want a protocol version alert", err)
	}
	for range 30 { // each refused handshake is an error line of Go's HTTP server
		if conn, err := tls.Dial("tcp", addr, old); err == nil {
			conn.Close()
		}
	}
	waitLog(t, &log, "TLS handshake error", 5*time.Second)
	if n := strings.Count(log.String(), `msg="dashboard http"`); n > 3*httpErrorLines {
		t.Errorf("%d error lines for 31 refused handshakes in about a second, want at most %d a second", n, httpErrorLines)
	}
	tls12 := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}
	if got := serial(t, addr, tls12); got.Cmp(first.Serial) != 0 {
		t.Fatalf("served serial %v, want the first certificate's %v", got, first.Serial)
	}

	second := ca.Issue(t, "dashboard-renewed", testcerts.Options{})
	testcerts.Replace(t, second.KeyFile, first.KeyFile)
	testcerts.Replace(t, second.CertFile, first.CertFile)
	deadline := time.Now().Add(5 * time.Second)
	for serial(t, addr, clientTLS).Cmp(second.Serial) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("new handshakes still get the first certificate 5 s after it was replaced on disk; log:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	refusals := strings.Count(log.String(), "tls files refused")
	os.WriteFile(first.CertFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o600)
	deadline = time.Now().Add(5 * time.Second)
	for strings.Count(log.String(), "tls files refused") == refusals {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal logged 5 s after the certificate file broke:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := serial(t, addr, clientTLS); got.Cmp(second.Serial) != 0 {
		t.Errorf("after a broken file: serial %v, want the previous certificate's %v", got, second.Serial)
	}
}

// TestProtectionFilesRefused: a missing or broken TLS or users file stops New with
// the flag's name.
func TestProtectionFilesRefused(t *testing.T) {
	ca := testcerts.NewCA(t, "page")
	good, other := ca.Issue(t, "dashboard", testcerts.Options{}), ca.Issue(t, "other", testcerts.Options{})
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"missing certificate", func(c *Config) { c.TLSCert, c.TLSKey = "/nonexistent/cert.pem", good.KeyFile }, []string{"--listen-tls-cert/--listen-tls-key", "no such file"}},
		{"key of another certificate", func(c *Config) { c.TLSCert, c.TLSKey = good.CertFile, other.KeyFile }, []string{"--listen-tls-cert/--listen-tls-key", "does not match"}},
		{"missing users file", func(c *Config) { c.UsersFile = "/nonexistent/users" }, []string{"--users-file", "no such file"}},
		{"users file over 4 MiB", func(c *Config) {
			c.UsersFile = writeUsers(t, "", "alice:pw")
			f, _ := os.OpenFile(c.UsersFile, os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte(strings.Repeat(strings.Repeat("#", 1000)+"\n", 5000)))
			f.Close()
		}, []string{"--users-file", "over 4 MiB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Cameras = []Camera{{"door", "x.mp4"}}
			tc.edit(&cfg)
			_, err := New(nil, cfg)
			if err == nil {
				t.Fatal("New accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
