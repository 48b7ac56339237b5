package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/testenv"
)

// TestDashboardUsageErrors: mistakes in the dashboard's flags exit 2 and name the flag.
func TestDashboardUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no camera", []string{"dashboard"}, "no camera: give at least one --camera NAME=SOURCE"},
		{"camera without source", []string{"dashboard", "--camera", "door"}, "want NAME=SOURCE"},
		{"camera name with a space", []string{"dashboard", "--camera", "front door=a.mp4"}, `camera name "front door"`},
		{"camera twice", []string{"dashboard", "--camera", "door=a.mp4", "--camera", "door=b.mp4"}, `camera "door" is given twice`},
		{"rule syntax", []string{"dashboard", "--camera", "door=a.mp4", "--rule", "dress"}, "want [CAMERA:]NAME=CATEGORY"},
		{"rule for an unknown camera", []string{"dashboard", "--camera", "door=a.mp4", "--rule", "till:dress=Dress"}, `names camera "till"`},
		{"fps", []string{"dashboard", "--camera", "door=a.mp4", "--fps", "0"}, "--fps must be in (0, 60]"},
		{"alert score", []string{"dashboard", "--camera", "door=a.mp4", "--alert-score", "2"}, "--alert-score must be in [0, 1]"},
		{"negative history", []string{"dashboard", "--camera", "door=a.mp4", "--history", "-1m"}, "--history must be in [1s, 24h0m0s]"},
		{"arguments", []string{"dashboard", "--camera", "door=a.mp4", "a.mp4"}, "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := atelier(t, "127.0.0.1:1", tc.args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, exitUsage, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("stderr lacks %q:\n%s", tc.want, r.stderr)
			}
		})
	}
}

// TestDashboardCommandReportsProblems runs `atelier dashboard` against an address
// where nothing listens, with a bad rule file and a missing camera source: it serves
// the page anyway, logs each problem, and exits 0 when interrupted.
func TestDashboardCommandReportsProblems(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.json")
	os.WriteFile(rules, []byte(`{"rules": [{"name": "dress", "categoriez": ["Dress"]}]}`), 0o644)
	var out, errOut testenv.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"dashboard", "--addr", "127.0.0.1:1", "--listen", "127.0.0.1:0", "--rules", rules,
			"--camera", "door=/nonexistent/door.mp4"}, env{stdout: &out, stderr: &errOut, stdin: strings.NewReader(""), getenv: func(string) string { return "" }})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(errOut.String(), "cannot reach atelierd at 127.0.0.1:1") || !strings.Contains(errOut.String(), "camera source failed") {
		if time.Now().After(deadline) {
			t.Fatalf("the log lacks the problems after 10 s:\n%s", errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	url := strings.TrimSpace(strings.TrimPrefix(out.String(), "dashboard: "))
	resp, err := http.Get(url + "api/state")
	if err != nil {
		t.Fatalf("GET %sapi/state: %v", url, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `unknown field \"categoriez\"`) {
		t.Errorf("the page's state lacks the rule file's problem:\n%s", body)
	}
	for _, want := range []string{`unknown field \"categoriez\"`, "/nonexistent/door.mp4: no such file"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, errOut.String())
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d after an interrupt, want 0; stderr:\n%s", code, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the dashboard did not stop within 10 s of the interrupt")
	}
}
