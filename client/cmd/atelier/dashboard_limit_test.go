package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestDashboardLoginLimitFlag: a negative or malformed --login-attempts-per-minute
// exits 2 and names the flag.
func TestDashboardLoginLimitFlag(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"-1", "--login-attempts-per-minute must be 0 (no limit) or more, not -1"},
		{"ten", `invalid value "ten" for flag -login-attempts-per-minute`},
	} {
		r := atelier(t, "127.0.0.1:1", "dashboard", "--camera", "door=a.mp4", "--login-attempts-per-minute", tc.value)
		if r.code != exitUsage {
			t.Fatalf("--login-attempts-per-minute %s: exit %d, want %d; stderr:\n%s", tc.value, r.code, exitUsage, r.stderr)
		}
		if !strings.Contains(r.stderr, tc.want) {
			t.Errorf("--login-attempts-per-minute %s: stderr lacks %q:\n%s", tc.value, tc.want, r.stderr)
		}
	}
}

// TestDashboardCommandLimitsLogins: `atelier dashboard --login-attempts-per-minute 2`
// refuses the third failed login from one address with 429 and Retry-After (60/2 s),
// and logs the limit at start-up and the refusal; by default the limit is 10.
func TestDashboardCommandLimitsLogins(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "users.htpasswd")
	os.WriteFile(users, []byte("manager:"+string(hash)+"\n"), 0o600)
	try := func(url, password string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", url+"api/pages", nil)
		req.SetBasicAuth("manager", password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	url, stderr, stop := startCommand(t, "--listen", "127.0.0.1:0", "--users-file", users, "--login-attempts-per-minute", "2")
	for range 2 {
		if resp := try(url, "wrong"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a failed login within the limit: %s, want 401", resp.Status)
		}
	}
	resp := try(url, "s3cret")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "30" {
		t.Errorf("a login past the limit: %s, Retry-After %q; want 429, 30", resp.Status, resp.Header.Get("Retry-After"))
	}
	stop()
	for _, want := range []string{"login_attempts_per_minute=2", `msg="dashboard logins limited" remote=127.0.0.1 user=manager`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, stderr.String())
		}
	}

	url, stderr, stop = startCommand(t, "--listen", "127.0.0.1:0", "--users-file", users)
	defer stop()
	for range 3 {
		try(url, "wrong")
	}
	if resp := try(url, "s3cret"); resp.StatusCode != http.StatusOK {
		t.Errorf("the right password after 3 failures, by default: %s, want 200", resp.Status)
	}
	if !strings.Contains(stderr.String(), "login_attempts_per_minute=10") {
		t.Errorf("the log lacks the default limit:\n%s", stderr.String())
	}
}
