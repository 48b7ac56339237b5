package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/atelier-vision/atelier/internal/testcerts"
	"github.com/atelier-vision/atelier/internal/testenv"
)

// TestDashboardUsageErrors: mistakes in the dashboard's flags exit 2 and name the flag.
func TestDashboardUsageErrors(t *testing.T) {
	md5Users := filepath.Join(t.TempDir(), "users")
	os.WriteFile(md5Users, []byte("# the shop\nmanager:$apr1$UCY7hHlp$Xx.rHn0R7LbOKeU9bQ5YT.\n"), 0o600)
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
		{"TLS certificate without its key", []string{"dashboard", "--camera", "door=a.mp4", "--listen-tls-cert", "page.pem"}, "--listen-tls-cert needs --listen-tls-key, which is missing"},
		{"TLS key without its certificate", []string{"dashboard", "--camera", "door=a.mp4", "--listen-tls-key", "page.key"}, "--listen-tls-key needs --listen-tls-cert, which is missing"},
		{"missing TLS files", []string{"dashboard", "--camera", "door=a.mp4", "--listen-tls-cert", "/nonexistent/page.pem", "--listen-tls-key", "/nonexistent/page.key"}, "--listen-tls-cert/--listen-tls-key: tls: /nonexistent/page.pem"},
		{"no pages", []string{"dashboard", "--camera", "door=a.mp4", "--max-pages", "0"}, "--max-pages must be in [1, 1024], not 0"},
		{"too many pages", []string{"dashboard", "--camera", "door=a.mp4", "--max-pages", "1025"}, "--max-pages must be in [1, 1024], not 1025"},
		{"missing users file", []string{"dashboard", "--camera", "door=a.mp4", "--users-file", "/nonexistent/users"}, "--users-file: users file: open /nonexistent/users: no such file"},
		{"users file of MD5 hashes", []string{"dashboard", "--camera", "door=a.mp4", "--users-file", md5Users}, `line 2: user "manager" has an MD5 hash ($apr1$, htpasswd -m); only bcrypt hashes are accepted: make the file with ` + "`htpasswd -B`"},
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
	url, errOut, stop := startCommand(t, "--listen", "127.0.0.1:0", "--rules", rules)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(errOut.String(), "cannot reach atelierd at 127.0.0.1:1") || !strings.Contains(errOut.String(), "camera source failed") {
		if time.Now().After(deadline) {
			t.Fatalf("the log lacks the problems after 10 s:\n%s", errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
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
	if code := stop(); code != exitOK {
		t.Errorf("exit %d after an interrupt, want 0; stderr:\n%s", code, errOut.String())
	}
}

// startCommand runs `atelier dashboard` with args until stop (or the test's end),
// which interrupts it and returns its exit code; it waits for the page's URL on
// stdout.
func startCommand(t *testing.T, args ...string) (url string, stderr *testenv.Buffer, stop func() int) {
	t.Helper()
	var out, errOut testenv.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"dashboard", "--addr", "127.0.0.1:1", "--camera", "door=/nonexistent/door.mp4"}, args...),
			env{stdout: &out, stderr: &errOut, stdin: strings.NewReader(""), getenv: func(string) string { return "" }})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.HasSuffix(out.String(), "\n") {
		select {
		case code := <-done:
			t.Fatalf("the dashboard exited %d before serving; stderr:\n%s", code, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no URL on stdout after 10 s; stderr:\n%s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(10 * time.Second):
				t.Error("the dashboard did not stop within 10 s of the interrupt")
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return strings.TrimSpace(strings.TrimPrefix(out.String(), "dashboard: ")), &errOut, stop
}

// TestDashboardCommandHTTPSWithLogin runs `atelier dashboard` with
// --listen-tls-cert, --listen-tls-key and --users-file on loopback: the URL it prints
// is https, the page needs the login, a user added to the file gets in, and nothing
// is logged as exposed.
func TestDashboardCommandHTTPSWithLogin(t *testing.T) {
	ca := testcerts.NewCA(t, "page")
	pair := ca.Issue(t, "dashboard", testcerts.Options{})
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "users.htpasswd")
	os.WriteFile(users, []byte("manager:"+string(hash)+"\n"), 0o600)
	// No login limit: below, a user not yet in the file polls with logins that fail
	// until the file is re-read, and ten a minute (the default) could run out first.
	url, stderr, stop := startCommand(t, "--listen", "127.0.0.1:0", "--listen-tls-cert", pair.CertFile,
		"--listen-tls-key", pair.KeyFile, "--users-file", users, "--max-pages", "3", "--login-attempts-per-minute", "0")
	if !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Errorf("the page's URL is %q, want https://127.0.0.1:PORT/", url)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: testcerts.ClientConfig(t, ca, nil)}}
	for _, tc := range []struct {
		user, password string
		want           int
	}{{"", "", 401}, {"manager", "wrong", 401}, {"manager", "s3cret", 200}} {
		req, _ := http.NewRequest("GET", url+"api/pages", nil)
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.password)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %sapi/pages as %q: %s, want %d", url, tc.user, resp.Status, tc.want)
		}
		if tc.want == 200 && strings.TrimSpace(string(body)) != `{"max":3,"open":0}` {
			t.Errorf("GET %sapi/pages: %s, want --max-pages 3 and no page open", url, body)
		}
	}
	clerk, _ := bcrypt.GenerateFromPassword([]byte("till-2"), bcrypt.MinCost)
	os.WriteFile(users, []byte("manager:"+string(hash)+"\nclerk:"+string(clerk)+"\n"), 0o600)
	deadline := time.Now().Add(5 * time.Second)
	for {
		req, _ := http.NewRequest("GET", url, nil)
		req.SetBasicAuth("clerk", "till-2")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a user added to --users-file: still %s after 5 s, want 200 (the file is re-read)", resp.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := stop(); code != exitOK {
		t.Errorf("exit %d after an interrupt, want 0; stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{"listen_tls_cert=" + pair.CertFile, "users_file=" + users, "max_pages=3", `user=manager why="wrong password"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "level=WARN msg=\"the page") || strings.Contains(stderr.String(), "s3cret") {
		t.Errorf("the log warns about a loopback page or shows the password:\n%s", stderr.String())
	}
}

// TestDashboardCommandWarnsWhenExposed: on every interface (":0") without
// --users-file the dashboard serves the page but logs one WARN line saying so and how
// to protect it; with a login but no TLS it warns that the passwords cross the
// network in clear text.
func TestDashboardCommandWarnsWhenExposed(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	users := filepath.Join(t.TempDir(), "users.htpasswd")
	os.WriteFile(users, []byte("manager:"+string(hash)+"\n"), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no login", nil, `level=WARN msg="the page shows the store's camera images to anyone who can reach this port: give --users-file (htpasswd -B) with --listen-tls-cert and --listen-tls-key, or --listen 127.0.0.1:PORT"`},
		{"login without TLS", []string{"--users-file", users}, `level=WARN msg="the page's logins cross the network in clear text: give --listen-tls-cert and --listen-tls-key"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, stderr, stop := startCommand(t, append([]string{"--listen", ":0"}, tc.args...)...)
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if code := stop(); code != exitOK {
				t.Errorf("exit %d, want 0", code)
			}
			if n := strings.Count(stderr.String(), "level=WARN msg=\"the page"); n != 1 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("%d WARN lines about the page, want one with %q:\n%s", n, tc.want, stderr.String())
			}
		})
	}
}
