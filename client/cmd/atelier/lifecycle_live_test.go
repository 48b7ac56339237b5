//go:build cgo

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atelier-vision/atelier/internal/servertest"
)

// TestLiveLifecycleCommands: against atelierd with mTLS and tokens, `reload` and
// `label set` succeed with the admin token (from $ATELIER_ADMIN_TOKEN, and from
// --admin-token-file, each replacing the infer --token for that call), and `models`
// then shows the label; the infer token alone is refused the admin calls.
func TestLiveLifecycleCommands(t *testing.T) {
	s := servertest.StartSecured(t)
	tlsArgs := []string{"--tls-ca", s.CA.CertFile, "--tls-cert", s.Client.CertFile, "--tls-key", s.Client.KeyFile, "--token", s.InferToken}
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte(s.AdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"ATELIER_ADDR": s.Addr}
	admin := map[string]string{"ATELIER_ADDR": s.Addr, "ATELIER_ADMIN_TOKEN": s.AdminToken}
	cli := func(t *testing.T, env map[string]string, args ...string) ran {
		t.Helper()
		return atelierEnv(env, append(args, tlsArgs...)...)
	}

	// The infer token alone: the admin calls are refused, nothing changes.
	if r := cli(t, base, "reload"); r.code != exitError || !strings.Contains(r.stderr, "PERMISSION_DENIED") {
		t.Fatalf("reload with the infer token: exit %d, stderr %q; want %d and PERMISSION_DENIED", r.code, r.stderr, exitError)
	}
	if r := cli(t, base, "label", "set", "classifier", "stable=1"); r.code != exitError || !strings.Contains(r.stderr, "PERMISSION_DENIED") {
		t.Fatalf("label set with the infer token: exit %d, stderr %q; want %d and PERMISSION_DENIED", r.code, r.stderr, exitError)
	}

	r := cli(t, admin, "reload", "--output", "json")
	if r.code != exitOK {
		t.Fatalf("reload: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var reloaded struct {
		Models []struct {
			Name     string
			Versions []struct {
				Version string
				State   string
			}
		}
	}
	mustJSON(t, r.stdout, &reloaded)
	found := false
	for _, m := range reloaded.Models {
		if m.Name == "classifier" {
			found = len(m.Versions) > 0 && m.Versions[0].State == "VERSION_STATE_AVAILABLE"
		}
	}
	if !found {
		t.Fatalf("reload's status has no AVAILABLE classifier:\n%s", r.stdout)
	}

	r = cli(t, base, "label", "set", "classifier", "stable=1", "--admin-token-file", tokenFile)
	if r.code != exitOK || strings.TrimSpace(r.stdout) != "classifier stable=1" {
		t.Fatalf("label set: exit %d, stdout %q, want 0 and %q\nstderr: %s", r.code, r.stdout, "classifier stable=1", r.stderr)
	}

	r = cli(t, base, "models")
	if r.code != exitOK {
		t.Fatalf("models: exit %d\n%s", r.code, r.stderr)
	}
	row := ""
	for _, l := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "classifier" {
			row = l
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(row), "stable=1") || !strings.Contains(row, "1:AVAILABLE") {
		t.Fatalf("models lacks the classifier's label stable=1 and its AVAILABLE version 1:\n%s", r.stdout)
	}

	// VERSION 0 removes the label again.
	r = cli(t, admin, "label", "set", "classifier", "stable=0", "--output", "json")
	var labels struct {
		Name          string           `json:"name"`
		VersionLabels map[string]int64 `json:"version_labels"`
	}
	mustJSON(t, r.stdout, &labels)
	if r.code != exitOK || labels.Name != "classifier" || len(labels.VersionLabels) != 0 {
		t.Fatalf("label set stable=0: exit %d, %+v; want 0 and no labels\nstderr: %s", r.code, labels, r.stderr)
	}
	if r = cli(t, base, "models", "--output", "json"); r.code != exitOK || strings.Contains(r.stdout, `"stable"`) {
		t.Fatalf("models still shows the removed label (exit %d):\n%s", r.code, r.stdout)
	}
}
