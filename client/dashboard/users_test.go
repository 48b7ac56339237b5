package dashboard

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/atelier-vision/atelier/internal/testenv"
)

// hashOf is password's bcrypt hash at cost, as `htpasswd -B` writes it ($2y$).
func hashOf(t *testing.T, password string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Replace(string(h), "$2a$", "$2y$", 1)
}

// writeUsers writes a users file of NAME:HASH lines, each password hashed at the
// lowest cost, and returns its path.
func writeUsers(t *testing.T, path string, logins ...string) string {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "users.htpasswd")
	}
	var b strings.Builder
	for _, l := range logins {
		name, pw, _ := strings.Cut(l, ":")
		fmt.Fprintf(&b, "%s:%s\n", name, hashOf(t, pw, bcrypt.MinCost))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseUsers(t *testing.T) {
	alice, bob := hashOf(t, "alice-pw", bcrypt.MinCost), hashOf(t, "bob-pw", bcrypt.MinCost)
	goAlice := strings.Replace(alice, "$2y$", "$2a$", 1) // as Go's bcrypt writes it
	costly := "$2y$18$" + alice[7:]                      // a well-formed hash of cost 18
	for _, tc := range []struct {
		name, file string
		users      []string // the names parsed, when err is empty
		err        []string // what the error says
	}{
		{"two users", "alice:" + alice + "\nbob:" + bob + "\n", []string{"alice", "bob"}, nil},
		{"comments, blank lines, CRLF and indented lines", "# the shop floor\n\n  # managers\r\nalice:" + alice + "\r\n\t\n  bob:" + bob, []string{"alice", "bob"}, nil},
		{"Go's $2a$ and a name with spaces and UTF-8", "Zoë Martin:" + goAlice + "\n", []string{"Zoë Martin"}, nil},
		{"MD5", "alice:" + alice + "\nbob:$apr1$UCY7hHlp$Xx.rHn0R7LbOKeU9bQ5YT.\n", nil, []string{"line 2", `"bob"`, "MD5", "only bcrypt", "htpasswd -B"}},
		{"SHA-1", "# x\nbob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", nil, []string{"line 2", "SHA-1", "htpasswd -B"}},
		{"DES crypt", "bob:rOKYEWQdHNQ3A\n", nil, []string{"line 1", "DES crypt", "htpasswd -B"}},
		{"SHA-512 crypt", "bob:$6$salt$abc\n", nil, []string{"line 1", "SHA-512-crypt"}},
		{"MD5 crypt", "bob:$1$salt$abc\n", nil, []string{"line 1", "MD5-crypt"}},
		{"plain text", "\n\nbob:hunter2\n", nil, []string{"line 3", "plain-text", "htpasswd -B"}},
		{"broken bcrypt", "bob:$2y$05$tooshort\n", nil, []string{"line 1", "broken bcrypt hash"}},
		{"cost over 17", "bob:" + costly + "\n", nil, []string{"line 1", "cost 18 is over 17"}},
		{"no colon", "alice:" + alice + "\nbob\n", nil, []string{"line 2", "want NAME:HASH"}},
		{"empty name", ":" + alice + "\n", nil, []string{"line 1", "user name is empty"}},
		{"duplicate user", "alice:" + alice + "\nbob:" + bob + "\nalice:" + bob + "\n", nil, []string{"line 3", `"alice" is also on line 1`}},
		{"name too long", strings.Repeat("n", 256) + ":" + alice + "\n", nil, []string{"line 1", "256 bytes is over the limit of 255"}},
		{"control character in the name", "al\x1bice:" + alice + "\n", nil, []string{"line 1", "not printable"}},
		{"line over 1024 bytes", "alice:" + alice + "\n# " + strings.Repeat("x", 1100) + "\n", nil, []string{"line 2", "over the limit of 1024"}},
		{"only comments", "# nobody yet\n\n", nil, []string{"no users", "htpasswd -B"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseUsers([]byte(tc.file))
			if tc.err != nil {
				if err == nil {
					t.Fatalf("got users %v, want an error", slices.Sorted(maps.Keys(got)))
				}
				for _, want := range tc.err {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q lacks %q", err, want)
					}
				}
				for _, secret := range []string{"hunter2", alice[7:], "$apr1$UCY7", "W6ph5Mm5"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q shows the file's hash or password %q", err, secret)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want users %v", err, tc.users)
			}
			if names := slices.Sorted(maps.Keys(got)); !slices.Equal(names, tc.users) {
				t.Fatalf("got users %q, want %q", names, tc.users)
			}
		})
	}
}

// get requests url with a Basic login (none if user is empty) and closes the body.
func get(t *testing.T, hc *http.Client, url, user, password string) *http.Response {
	t.Helper()
	resp := getOpen(t, hc, url, user, password)
	resp.Body.Close()
	return resp
}

// getOpen requests url with a Basic login (none if user is empty); the caller closes
// the body.
func getOpen(t *testing.T, hc *http.Client, url, user, password string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestLoginRequired: with a users file every path of the page, the API and the
// static files included, is 401 with the challenge without a good login, and served
// with one; refused logins are logged by name, never with the password.
func TestLoginRequired(t *testing.T) {
	var log logBuffer
	d := quietDashboard(t, func(c *Config) {
		c.UsersFile = writeUsers(t, "", "manager:s3cret", "clerk:till-2")
		c.LoginAttemptsPerMinute = 0 // the test makes dozens of wrong logins from one address
		c.Log = log.logger()
	})
	web := httptest.NewServer(d.Handler())
	defer web.Close()
	paths := []string{"/", "/static/app.js", "/static/vendor/uplot/uPlot.iife.min.js", "/api/events", "/api/state",
		"/api/pages", "/api/frames/door/1.jpg", "/api/alerts/1.jpg", "/nowhere"}
	for _, tc := range []struct{ name, user, password string }{
		{"no login", "", ""},
		{"wrong password", "manager", "s3cret "},
		{"another user's password", "clerk", "s3cret"},
		{"unknown user", "mallory", "s3cret"},
		{"empty password", "manager", ""},
	} {
		for _, path := range paths {
			resp := get(t, http.DefaultClient, web.URL+path, tc.user, tc.password)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s, GET %s: got %s, want 401", tc.name, path, resp.Status)
			}
			if got, want := resp.Header.Get("WWW-Authenticate"), `Basic realm="atelier dashboard", charset="UTF-8"`; got != want {
				t.Errorf("%s, GET %s: WWW-Authenticate %q, want %q", tc.name, path, got, want)
			}
		}
	}
	for path, want := range map[string]int{"/": 200, "/static/app.js": 200, "/api/pages": 200, "/api/state": 200,
		"/api/frames/door/1.jpg": 404, "/nowhere": 404} {
		for _, login := range [][2]string{{"manager", "s3cret"}, {"clerk", "till-2"}} {
			if resp := get(t, http.DefaultClient, web.URL+path, login[0], login[1]); resp.StatusCode != want {
				t.Errorf("%s, GET %s: got %s, want %d", login[0], path, resp.Status, want)
			}
		}
	}
	ev := openEventsAs(t, http.DefaultClient, web.URL, "manager", "s3cret")
	ev.wait("hello", 5*time.Second, func(string) bool { return true })
	ev.body.Close()

	for _, want := range []string{`user=mallory why="unknown user"`, `user=manager why="wrong password"`, `user=clerk why="wrong password"`} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log.String())
		}
	}
	if n := strings.Count(log.String(), "user=manager"); n != 1 {
		t.Errorf("%d log lines for manager's refused logins, want 1 (at most one a minute):\n%s", n, log.String())
	}
	if strings.Contains(log.String(), "s3cret") || strings.Contains(log.String(), "till-2") {
		t.Errorf("the log shows a password:\n%s", log.String())
	}
}

// TestFailureLogIsBounded: refused logins log each name at most once a minute and at
// most failureLines lines a minute in all, and say how many they held back.
func TestFailureLogIsBounded(t *testing.T) {
	var log logBuffer
	var f failureLog
	t0 := time.Now()
	for i := range 100 {
		f.note(log.logger(), t0.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf("user%d", i%30), "unknown user", "10.0.0.1:5")
	}
	if n := strings.Count(log.String(), "dashboard login refused"); n != failureLines {
		t.Fatalf("%d lines for 100 refusals of 30 names in a second, want %d:\n%s", n, failureLines, log.String())
	}
	f.note(log.logger(), t0.Add(61*time.Second), "user1", "wrong password", "10.0.0.1:5")
	if n := strings.Count(log.String(), "dashboard login refused"); n != failureLines+1 {
		t.Fatalf("%d lines after a minute, want %d", n, failureLines+1)
	}
	if !strings.Contains(log.String(), "user=user1 why=\"wrong password\" remote=10.0.0.1:5 held_back=90") {
		t.Errorf("the line after a minute does not count the 90 held back:\n%s", log.String())
	}
}

// TestLoginCache: a successful check is remembered, so the next ones cost no bcrypt;
// an unknown user costs a bcrypt comparison like a wrong password does (no timing
// oracle for names); a reload forgets the cache.
func TestLoginCache(t *testing.T) {
	const cost = 9
	path := filepath.Join(t.TempDir(), "users")
	hash := hashOf(t, "s3cret", cost)
	os.WriteFile(path, []byte("manager:"+hash+"\n"), 0o600)
	u, err := openUsers(path, 2, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	timed := func(name, password string, want bool) time.Duration {
		t.Helper()
		start := time.Now()
		if _, ok, why := u.check(ctx, name, password); ok != want {
			t.Fatalf("check(%s): %v (%s), want %v", name, ok, why, want)
		}
		return time.Since(start)
	}
	median := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	// The two are timed in turns, so that a change in the machine's load while they run
	// (other tests' processes starting or ending) slows both alike.
	var wrongs, unknowns []time.Duration
	for range 5 {
		wrongs = append(wrongs, timed("manager", "nope", false))
		unknowns = append(unknowns, timed("mallory", "nope", false))
	}
	wrong, unknown := median(wrongs), median(unknowns)
	if unknown < wrong/2 {
		t.Errorf("an unknown user took %v, a wrong password %v: names can be probed by timing", unknown, wrong)
	}
	first := timed("manager", "s3cret", true)
	var cached time.Duration
	for range 20 {
		cached += timed("manager", "s3cret", true)
	}
	if cached > first {
		t.Errorf("20 cached checks took %v, one bcrypt check %v: the cache is not used", cached, first)
	}
	if n := len(u.table.Load().ok); n != 1 {
		t.Errorf("the cache holds %d logins, want 1 (failures are not cached)", n)
	}
	if err := u.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := len(u.table.Load().ok); n != 0 {
		t.Errorf("after a reload the cache holds %d logins, want 0", n)
	}
}

// TestUsersFileReload: the users file is re-read when it changes: a new user gets in
// at once, a removed one is refused at once and its open event stream ends at its
// next event while another user's goes on; a broken new file is refused with a log
// line naming its line, and the users before it stay.
func TestUsersFileReload(t *testing.T) {
	var log logBuffer
	line := func(name, password string) string { return name + ":" + hashOf(t, password, bcrypt.MinCost) + "\n" }
	alice, bob, carol := line("alice", "a-pw"), line("bob", "b-pw"), line("carol", "c-pw")
	path := filepath.Join(t.TempDir(), "users.htpasswd")
	os.WriteFile(path, []byte(alice+bob), 0o600)
	// No login limit: the test polls with logins that fail until a reload lands.
	d := quietDashboard(t, func(c *Config) { c.UsersFile, c.Log, c.LoginAttemptsPerMinute = path, log.logger(), 0 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.watchFiles(ctx)
	web := httptest.NewServer(d.Handler())
	defer web.Close()
	hc := web.Client()
	aliceEv := openEventsAs(t, hc, web.URL, "alice", "a-pw")
	bobEv := openEventsAs(t, hc, web.URL, "bob", "b-pw")
	defer aliceEv.body.Close()
	defer bobEv.body.Close()
	aliceEv.wait("hello", 5*time.Second, func(string) bool { return true })
	bobEv.wait("hello", 5*time.Second, func(string) bool { return true })
	if resp := get(t, hc, web.URL+"/", "carol", "c-pw"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("carol before she is added: %s, want 401", resp.Status)
	}

	os.WriteFile(path, []byte(bob+carol), 0o600) // as htpasswd -D alice, then -B carol
	waitStatus(t, hc, web.URL+"/", "carol", "c-pw", http.StatusOK)
	if resp := get(t, hc, web.URL+"/", "alice", "a-pw"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("alice once removed: %s, want 401", resp.Status)
	}
	d.hub.publish("state", "after alice left")
	aliceEv.waitEnd(5*time.Second, "alice was removed from the users file")
	bobEv.wait("state", 5*time.Second, func(data string) bool { return data == `"after alice left"` })

	os.WriteFile(path, []byte(bob+"carol:$apr1$UCY7hHlp$Xx.rHn0R7LbOKeU9bQ5YT.\n"), 0o600)
	waitLog(t, &log, "users file refused; the previous users stay", 5*time.Second)
	if want := "line 2"; !strings.Contains(log.String(), want) {
		t.Errorf("the refusal does not name %q:\n%s", want, log.String())
	}
	for _, login := range [][2]string{{"bob", "b-pw"}, {"carol", "c-pw"}} {
		if resp := get(t, hc, web.URL+"/", login[0], login[1]); resp.StatusCode != http.StatusOK {
			t.Errorf("%s after a broken file: %s, want 200 (the old users stay)", login[0], resp.Status)
		}
	}
	d.hub.publish("state", "still bob")
	bobEv.wait("state", 5*time.Second, func(data string) bool { return data == `"still bob"` })

	// A new password for bob (htpasswd -B again) ends his open stream too.
	os.WriteFile(path, []byte(line("bob", "b-pw2")+carol), 0o600)
	waitStatus(t, hc, web.URL+"/", "bob", "b-pw2", http.StatusOK)
	d.hub.publish("state", "bob's new password")
	bobEv.waitEnd(5*time.Second, "bob's password changed")
}

// waitEnd waits until the stream ends, which it must within, once what happened.
func (e *events) waitEnd(within time.Duration, what string) {
	e.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case _, open := <-e.ch:
			if !open {
				return
			}
		case <-deadline:
			e.t.Fatalf("the event stream is still open %v after %s", within, what)
		}
	}
}

// waitStatus polls url with a login until it answers want.
func waitStatus(t *testing.T, hc *http.Client, url, user, password string, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp := get(t, hc, url, user, password)
		if resp.StatusCode == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s, GET %s: still %s after 5 s, want %d", user, url, resp.Status, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLog waits until the log holds want.
func waitLog(t *testing.T, log *logBuffer, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(log.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the log lacks %q after %v:\n%s", want, within, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// htpasswd finds Apache's htpasswd (Debian's apache2-utils): missing, it skips the
// test, or fails it under CI=true.
func htpasswd(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("htpasswd")
	if err != nil {
		testenv.Missing(t, "htpasswd", "run `make setup`, which installs Debian's apache2-utils package")
	}
	return p
}

// TestHtpasswdFile: a users file written by Apache's own `htpasswd -B` works, a user
// it deletes is refused once the file is re-read, and the hashes of its other modes
// (MD5, SHA-1) are refused at start-up with their line.
func TestHtpasswdFile(t *testing.T) {
	bin := htpasswd(t)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("htpasswd %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	path := filepath.Join(t.TempDir(), "users.htpasswd")
	run("-B", "-c", "-b", path, "manager", "s3cret")
	run("-B", "-b", path, "clerk", "pässwörd with spaces")
	d := quietDashboard(t, func(c *Config) { c.UsersFile = path })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.watchFiles(ctx)
	web := httptest.NewServer(d.Handler())
	defer web.Close()
	for _, tc := range []struct {
		user, password string
		want           int
	}{
		{"manager", "s3cret", 200},
		{"clerk", "pässwörd with spaces", 200},
		{"manager", "S3cret", 401},
		{"clerk", "pässwörd", 401},
	} {
		if resp := get(t, http.DefaultClient, web.URL+"/", tc.user, tc.password); resp.StatusCode != tc.want {
			t.Errorf("%s:%q: got %s, want %d", tc.user, tc.password, resp.Status, tc.want)
		}
	}
	run("-D", path, "clerk")
	waitStatus(t, http.DefaultClient, web.URL+"/", "clerk", "pässwörd with spaces", http.StatusUnauthorized)
	if resp := get(t, http.DefaultClient, web.URL+"/", "manager", "s3cret"); resp.StatusCode != 200 {
		t.Errorf("manager after clerk was deleted: %s, want 200", resp.Status)
	}

	for _, mode := range []struct{ flag, kind string }{{"-m", "MD5"}, {"-s", "SHA-1"}} {
		run(mode.flag, "-b", path, "legacy", "old-pw")
		cfg := DefaultConfig()
		cfg.Cameras, cfg.UsersFile = []Camera{{"door", "x.mp4"}}, path
		_, err := New(nil, cfg)
		if err == nil {
			t.Fatalf("htpasswd %s: the file was accepted", mode.flag)
		}
		for _, want := range []string{"--users-file", "line 2", `"legacy"`, mode.kind, "htpasswd -B"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("htpasswd %s: error %q lacks %q", mode.flag, err, want)
			}
		}
		run("-D", path, "legacy")
	}
}
