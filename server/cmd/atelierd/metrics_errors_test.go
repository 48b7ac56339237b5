package main

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/lograte"
	"github.com/atelier-vision/atelier/internal/testcerts"
)

// syncBuffer is a bytes.Buffer safe for the HTTP server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMetricsHandshakeFailuresDoNotFloodTheLog sends 200 plaintext connections to the
// TLS metrics port: each is a failed handshake Go's HTTP server reports, and at most a
// few a second may reach the log.
func TestMetricsHandshakeFailuresDoNotFloodTheLog(t *testing.T) {
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	ca := testcerts.NewCA(t, "m")
	s, err := newSecurity(securityConfig{ReloadInterval: 1, TLS: tlsFiles(ca.Issue(t, "server", testcerts.Options{}))}, log)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := s.metricsListener("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Second, ErrorLog: lograte.HTTPErrorLog(log, "metrics http", httpErrorLinesPerSecond)}
	go hs.Serve(lis)
	defer hs.Close()
	start := time.Now()
	for range 200 {
		c, err := net.Dial("tcp", lis.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		c.Read(make([]byte, 64))
		c.Close()
	}
	// The server still answers a proper client.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}}}
	resp, err := c.Get("https://" + lis.Addr().String() + "/metrics")
	if err != nil {
		t.Fatalf("a TLS client after the flood: %v", err)
	}
	resp.Body.Close()
	seconds := int(time.Since(start)/time.Second) + 1
	lines := strings.Count(out.String(), "handshake")
	if lines == 0 {
		t.Fatalf("no handshake failure was logged:\n%s", out.String())
	}
	if max := httpErrorLinesPerSecond * (seconds + 1); lines > max {
		t.Fatalf("%d handshake lines for 200 failed handshakes in %d s, want at most %d", lines, seconds, max)
	}
	t.Logf("%d handshake lines for 200 failed handshakes in %d s", lines, seconds)
}
