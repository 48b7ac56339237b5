package dashboard

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// quietDashboard is a dashboard that is not run: its page can be served, with no
// camera streaming and nothing listening at its server address. edits change its
// configuration first.
func quietDashboard(t *testing.T, edits ...func(*Config)) *Dashboard {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Cameras = []Camera{{"door", "x.mp4"}}
	cfg.Log = slog.New(slog.DiscardHandler)
	for _, e := range edits {
		e(&cfg)
	}
	d, err := New(fastClient(t, "127.0.0.1:1"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.client.Close() })
	return d
}

// shorten sets *v to short until the test ends.
func shorten(t *testing.T, v *time.Duration, short time.Duration) {
	old := *v
	*v = short
	t.Cleanup(func() { *v = old })
}

// TestEventStreamGivesUpOnAStuckBrowser: a page that stops reading its event stream
// (a browser that vanished without closing the connection) does not hold its handler
// forever: the handler returns once a write has waited writeTimeout.
func TestEventStreamGivesUpOnAStuckBrowser(t *testing.T) {
	shorten(t, &writeTimeout, 300*time.Millisecond)
	d := quietDashboard(t)
	returned := make(chan struct{})
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.Handler().ServeHTTP(w, r)
		if r.URL.Path == "/api/events" {
			close(returned)
		}
	}))
	defer web.Close()
	conn, err := net.Dial("tcp", web.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	io.WriteString(conn, "GET /api/events HTTP/1.1\r\nHost: page\r\n\r\n")
	for d.hub.subscribers() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	// Never read: fill the socket's buffers, and the page's queue behind them.
	big := strings.Repeat("x", 256<<10)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-returned:
			return
		case <-deadline:
			t.Fatal("the event stream's handler is still writing to a page that stopped reading 10 s ago")
		case <-time.After(5 * time.Millisecond):
			d.hub.publish("state", big)
		}
	}
}

// TestHTTPServerLimits: the page's server closes a keep-alive connection left idle,
// and refuses oversized headers.
func TestHTTPServerLimits(t *testing.T) {
	shorten(t, &idleTimeout, 300*time.Millisecond)
	d := quietDashboard(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := d.HTTPServer(context.Background())
	go srv.Serve(ln)
	defer srv.Close()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /api/frames/door/1.jpg HTTP/1.1\r\nHost: page\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("got %s, want 404 for a frame the dashboard does not hold", resp.Status)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("an idle keep-alive connection: got %v, want it closed (EOF) by the server", err)
	}

	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
	req.Header.Set("X-Padding", strings.Repeat("x", 100<<10))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("100 KiB of headers: got %s, want 431", resp.Status)
	}
}

// TestPageCap: with --max-pages 2 open, the event stream of a third page gets 503
// with Retry-After, /api/pages and the state say so, and once a page closes the next
// one gets in.
func TestPageCap(t *testing.T) {
	d := quietDashboard(t, func(c *Config) { c.MaxPages = 2 })
	base, stop := context.WithCancel(context.Background())
	web := httptest.NewUnstartedServer(d.Handler())
	web.Config.BaseContext = func(net.Listener) context.Context { return base }
	web.Start()
	defer func() { stop(); web.Close() }()
	first, second := openEvents(t, web.URL), openEvents(t, web.URL)
	defer second.body.Close()
	first.wait("hello", 5*time.Second, func(string) bool { return true })
	second.wait("hello", 5*time.Second, func(string) bool { return true })

	resp, err := http.Get(web.URL + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable {
		resp.Body.Close()
		t.Fatalf("the third page's event stream: got %s, want 503", resp.Status)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := resp.Header.Get("Retry-After"); got != "5" {
		t.Errorf("Retry-After %q, want 5", got)
	}
	if !strings.Contains(string(body), "too many open pages") || !strings.Contains(string(body), "--max-pages") {
		t.Errorf("the 503's body %q does not say why", body)
	}
	if got, want := getPages(t, web.URL), `{"max":2,"open":2}`; got != want {
		t.Errorf("/api/pages: %s, want %s", got, want)
	}
	if s := d.snapshot(time.Now(), false); s.Pages != 2 || s.MaxPages != 2 || s.PagesRefused != 1 {
		t.Errorf("state: %d pages of %d, %d refused; want 2 of 2, 1 refused", s.Pages, s.MaxPages, s.PagesRefused)
	}

	first.body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for d.hub.subscribers() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d pages open 5 s after one of 2 closed, want 1", d.hub.subscribers())
		}
		time.Sleep(10 * time.Millisecond)
	}
	third := openEvents(t, web.URL)
	defer third.body.Close()
	third.wait("hello", 5*time.Second, func(string) bool { return true })
}

func getPages(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/api/pages")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}
