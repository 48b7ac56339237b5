package dashboard

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// limitedPage serves a dashboard whose users are manager:s3cret and clerk:till-2 with
// a limit of perMinute logins a minute from one address. Its limit runs on a clock
// the test moves (advance), and compares counts its bcrypt comparisons.
type limitedPage struct {
	d        *Dashboard
	url      string
	log      *logBuffer
	now      atomic.Int64 // the limit's clock, Unix nanoseconds
	compares atomic.Int64
}

func serveLimited(t *testing.T, perMinute int) *limitedPage {
	t.Helper()
	p := &limitedPage{log: &logBuffer{}}
	p.d = quietDashboard(t, func(c *Config) {
		c.UsersFile = writeUsers(t, "", "manager:s3cret", "clerk:till-2")
		c.LoginAttemptsPerMinute = perMinute
		c.Log = p.log.logger()
	})
	p.now.Store(time.Unix(1_000_000, 0).UnixNano())
	u := p.d.users
	u.clock = func() time.Time { return time.Unix(0, p.now.Load()) }
	compare := u.compare
	u.compare = func(hash, password []byte) error {
		p.compares.Add(1)
		return compare(hash, password)
	}
	web := httptest.NewServer(p.d.Handler())
	t.Cleanup(web.Close)
	p.url = web.URL + "/api/pages"
	return p
}

func (p *limitedPage) advance(d time.Duration) { p.now.Add(int64(d)) }

// clientFrom is an HTTP client whose connections come from the local address ip.
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: dialer.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// wantStatus requests p's page as user and checks the status; a 429 must come with
// the Retry-After retryAfter and a message naming the limit.
func (p *limitedPage) wantStatus(t *testing.T, hc *http.Client, user, password string, want int, retryAfter string) {
	t.Helper()
	resp := getOpen(t, hc, p.url, user, password)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s:%s: got %s (%s), want %d", user, password, resp.Status, strings.TrimSpace(string(body)), want)
	}
	if want != http.StatusTooManyRequests {
		return
	}
	if got := resp.Header.Get("Retry-After"); got != retryAfter {
		t.Errorf("%s:%s: Retry-After %q, want %q", user, password, got, retryAfter)
	}
	if !strings.Contains(string(body), "too many failed logins from your address (the limit is 10 a minute)") {
		t.Errorf("the 429's message does not name the limit: %q", body)
	}
	if resp.Header.Get("WWW-Authenticate") != "" {
		t.Error("the 429 asks for a login: the browser would ask the user again while limited")
	}
}

// TestLoginLimit: after a burst of 10 failed logins from one address the next is 429
// with Retry-After and runs no bcrypt comparison, even with the right password of a
// user not logged in lately; a login served from the cache of successful ones goes
// on being served (it costs no bcrypt and proves the password: refusing it would
// only cut off a page that is open); once the wait has passed, an attempt is allowed
// again, and a successful one gives its attempt back. The refusals are logged once.
func TestLoginLimit(t *testing.T) {
	p := serveLimited(t, 10)
	hc := clientFrom(t, "127.0.0.1")

	p.wantStatus(t, hc, "manager", "s3cret", http.StatusOK, "") // a bcrypt check, given back, and cached
	for range 10 {
		p.wantStatus(t, hc, "manager", "guess", http.StatusUnauthorized, "")
	}
	// The manager's successful login gave its attempt back: the burst was 10 failures.
	if n := p.compares.Load(); n != 11 {
		t.Fatalf("%d bcrypt comparisons for 11 uncached logins, want 11", n)
	}
	p.wantStatus(t, hc, "manager", "guess", http.StatusTooManyRequests, "6")
	p.wantStatus(t, hc, "clerk", "till-2", http.StatusTooManyRequests, "6") // right, but not cached
	for range 30 {
		p.wantStatus(t, hc, "mallory", "guess", http.StatusTooManyRequests, "6")
	}
	if n := p.compares.Load(); n != 11 {
		t.Fatalf("%d bcrypt comparisons after 32 logins refused by the limit, want still 11", n)
	}
	for range 20 { // a page fetching frames
		p.wantStatus(t, hc, "manager", "s3cret", http.StatusOK, "")
	}
	if n := p.compares.Load(); n != 11 {
		t.Fatalf("%d bcrypt comparisons after cached logins, want still 11", n)
	}
	if n := strings.Count(p.log.String(), `msg="dashboard logins limited"`); n != 1 {
		t.Errorf("%d log lines for 32 refusals from one address, want 1:\n%s", n, p.log.String())
	}
	if want := `remote=127.0.0.1 user=manager why="too many failed logins from this address" per_minute=10 retry_after_s=6`; !strings.Contains(p.log.String(), want) {
		t.Errorf("the log lacks %q:\n%s", want, p.log.String())
	}

	p.advance(5900 * time.Millisecond)
	p.wantStatus(t, hc, "clerk", "till-2", http.StatusTooManyRequests, "1") // 0.1 s, rounded up
	p.advance(100 * time.Millisecond)
	p.wantStatus(t, hc, "clerk", "till-2", http.StatusOK, "") // allowed, and given back
	p.wantStatus(t, hc, "clerk", "guess", http.StatusUnauthorized, "")
	p.wantStatus(t, hc, "clerk", "guess", http.StatusTooManyRequests, "6")
	if n := p.compares.Load(); n != 13 {
		t.Fatalf("%d bcrypt comparisons, want 13", n)
	}
	p.advance(time.Minute)
	for range 10 {
		p.wantStatus(t, hc, "mallory", "guess", http.StatusUnauthorized, "")
	}
	p.wantStatus(t, hc, "mallory", "guess", http.StatusTooManyRequests, "6")
}

// TestLoginLimitIsPerAddress: another client address keeps its own attempts while
// one is limited.
func TestLoginLimitIsPerAddress(t *testing.T) {
	p := serveLimited(t, 10)
	a, b := clientFrom(t, "127.0.0.1"), clientFrom(t, "127.0.0.2")
	if resp, err := b.Get(p.url); err != nil {
		t.Skipf("this host cannot connect from 127.0.0.2: %v", err)
	} else {
		resp.Body.Close()
	}
	for range 10 {
		p.wantStatus(t, a, "manager", "guess", http.StatusUnauthorized, "")
	}
	p.wantStatus(t, a, "clerk", "till-2", http.StatusTooManyRequests, "6")
	p.wantStatus(t, b, "clerk", "till-2", http.StatusOK, "")
	for range 10 {
		p.wantStatus(t, b, "manager", "guess", http.StatusUnauthorized, "")
	}
	p.wantStatus(t, b, "manager", "s3cret", http.StatusTooManyRequests, "6")
	if n := p.compares.Load(); n != 21 {
		t.Fatalf("%d bcrypt comparisons, want 21", n)
	}
}

// TestLoginLimitHoldsAFlood: 40 wrong logins at once from one address run 10 bcrypt
// comparisons, not 40, so they cannot hold the bcrypt slots for long; the others
// are refused without waiting for a slot.
func TestLoginLimitHoldsAFlood(t *testing.T) {
	p := serveLimited(t, 10)
	hc := clientFrom(t, "127.0.0.1")
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", p.url, nil)
			req.SetBasicAuth("manager", "guess")
			resp, err := hc.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[http.StatusUnauthorized] != 10 || codes[http.StatusTooManyRequests] != 30 {
		t.Errorf("40 wrong logins at once: %v, want 10 401s and 30 429s", codes)
	}
	if n := p.compares.Load(); n != 10 {
		t.Errorf("%d bcrypt comparisons, want 10", n)
	}
}

// TestLoginLimitOff: with 0 a client may fail as often as it likes.
func TestLoginLimitOff(t *testing.T) {
	p := serveLimited(t, 0)
	hc := clientFrom(t, "127.0.0.1")
	for range 30 {
		p.wantStatus(t, hc, "manager", "guess", http.StatusUnauthorized, "")
	}
	p.wantStatus(t, hc, "clerk", "till-2", http.StatusOK, "")
	if n := p.compares.Load(); n != 31 {
		t.Errorf("%d bcrypt comparisons, want 31", n)
	}
}

// TestLoginLimitConfig: a negative limit is refused, naming the flag.
func TestLoginLimitConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Cameras = []Camera{{"door", "x.mp4"}}
	cfg.LoginAttemptsPerMinute = -1
	if err := cfg.Check(); err == nil || !strings.Contains(err.Error(), "--login-attempts-per-minute must be 0 (no limit) or more, not -1") {
		t.Errorf("a negative limit: %v, want an error naming --login-attempts-per-minute", err)
	}
}

func TestCallerKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:5000":               "192.0.2.7",
		"[2001:db8:1:2:aaaa::1]:443":   "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::9]:80":    "2001:db8:1:2::/64",
		"[::ffff:192.0.2.7]:1":         "::ffff:192.0.2.7",
		"not an address":               "not an address",
		"@":                            "@", // a Unix socket's peer
		"[2001:db8:1:3::1%eth0]:12345": "2001:db8:1:3::/64",
	} {
		if got := callerKey(in); got != want {
			t.Errorf("callerKey(%q) = %q, want %q", in, got, want)
		}
	}
}
