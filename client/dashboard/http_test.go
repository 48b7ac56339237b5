package dashboard

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// quietDashboard is a dashboard that is not run: its page can be served, with no
// camera streaming and nothing listening at its server address.
func quietDashboard(t *testing.T) *Dashboard {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Cameras = []Camera{{"door", "x.mp4"}}
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
