//go:build cgo

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/atelier-vision/atelier/internal/servertest"
)

// atelierEnv runs the CLI with the given environment.
func atelierEnv(vars map[string]string, args ...string) ran {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, env{
		stdout: &out, stderr: &errOut, stdin: strings.NewReader(""),
		getenv: func(k string) string { return vars[k] },
	})
	return ran{code, out.String(), errOut.String()}
}

// TestLiveSecurityFlags: --tls-ca, --tls-cert, --tls-key and --token (or
// $ATELIER_TOKEN) reach a server with mTLS and tokens; each missing piece fails clearly.
func TestLiveSecurityFlags(t *testing.T) {
	s := servertest.StartSecured(t)
	tlsArgs := []string{"--tls-ca", s.CA.CertFile, "--tls-cert", s.Client.CertFile, "--tls-key", s.Client.KeyFile}
	env := map[string]string{"ATELIER_ADDR": s.Addr}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"flags", env, append(append([]string{"models"}, tlsArgs...), "--token", s.InferToken), exitOK, "classifier"},
		{"token from the environment", map[string]string{"ATELIER_ADDR": s.Addr, "ATELIER_TOKEN": s.InferToken},
			append([]string{"models", "--priority", "high"}, tlsArgs...), exitOK, "classifier"},
		{"no token", env, append([]string{"models"}, tlsArgs...), exitError, "Unauthenticated"},
		{"no client certificate", env, []string{"models", "--tls-ca", s.CA.CertFile, "--token", s.InferToken}, exitError, "Unavailable"},
		{"key without certificate", env, []string{"models", "--tls-ca", s.CA.CertFile, "--tls-key", s.Client.KeyFile}, exitUsage, "both"},
		{"bad priority", env, append([]string{"models", "--priority", "urgent"}, tlsArgs...), exitUsage, "--priority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := atelierEnv(tc.env, tc.args...)
			if r.code != tc.code || !strings.Contains(strings.ToLower(r.stdout+r.stderr), strings.ToLower(tc.want)) {
				t.Fatalf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", r.code, tc.code, tc.want, r.stdout, r.stderr)
			}
		})
	}
}
