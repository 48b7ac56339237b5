// Package certs serves TLS from certificate, key and client-CA files that may change
// while the server runs. Reload reads all of them and swaps the result in only if
// every file parses and the key matches the certificate; otherwise the old ones keep
// serving. New handshakes use the current files; open connections are not touched.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
)

// Files names the PEM files: the server's certificate chain and key, and optionally the
// CAs whose client certificates are accepted (mTLS).
type Files struct {
	Cert, Key, ClientCA string
}

// Paths returns the files that are set.
func (f Files) Paths() []string {
	out := []string{f.Cert, f.Key}
	if f.ClientCA != "" {
		out = append(out, f.ClientCA)
	}
	return out
}

// Reloader holds the current TLS configuration.
type Reloader struct {
	files Files
	log   *slog.Logger
	cur   atomic.Pointer[tls.Config]
}

// New loads files; it fails if any is missing or broken.
func New(files Files, log *slog.Logger) (*Reloader, error) {
	if files.Cert == "" || files.Key == "" {
		return nil, errors.New("tls: both a certificate and a key are needed")
	}
	r := &Reloader{files: files, log: log}
	cfg, err := load(files)
	if err != nil {
		return nil, err
	}
	r.cur.Store(cfg)
	return r, nil
}

func load(f Files) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: %s, %s: %w", f.Cert, f.Key, err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pair},
	}
	if f.ClientCA != "" {
		pem, err := os.ReadFile(f.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("tls: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: client CA %s holds no PEM certificate", f.ClientCA)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Reload re-reads the files. On error the previous certificates keep serving and the
// error is logged (and returned).
func (r *Reloader) Reload() error {
	cfg, err := load(r.files)
	if err != nil {
		r.log.Error("tls files refused; the previous certificates keep serving", "err", err)
		return err
	}
	r.cur.Store(cfg)
	leaf := cfg.Certificates[0].Leaf
	attrs := []any{"cert", r.files.Cert}
	if leaf != nil {
		attrs = append(attrs, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
	}
	r.log.Info("tls files loaded", attrs...)
	return nil
}

// Files returns the files the reloader reads.
func (r *Reloader) Files() Files { return r.files }

// Config returns a server TLS configuration that hands every new handshake the
// current certificates and client CAs (TLS 1.2 or later), offering the application
// protocols protos ("h2" for gRPC, "http/1.1" for the metrics port).
func (r *Reloader) Config(protos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: protos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := r.cur.Load().Clone()
			c.NextProtos = protos
			return c, nil
		},
	}
}
