package dashboard

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawGet sends one request as written (no client-side path cleaning) and returns the
// response with its body read.
func rawGet(t *testing.T, addr, request string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, request)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: %v", request, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestStaticPathTraversal: no spelling of a path outside the page's assets gets a
// file: the assets are an embedded tree of web/ only, and the file server refuses
// "..", encoded or not.
func TestStaticPathTraversal(t *testing.T) {
	web := httptest.NewServer(quietDashboard(t).Handler())
	defer web.Close()
	addr := web.Listener.Addr().String()
	for _, p := range []string{
		"/static/../http.go", "/static/../../go.mod", "/static/%2e%2e/http.go", "/static/%2e%2e%2fhttp.go",
		"/static/..%2fhttp.go", "/static/..%5chttp.go", "/static/%2e%2e%2f%2e%2e%2fgo.mod", "//static/../http.go",
		"/static//../http.go", "/static/vendor/../../http.go", "/static/.%2e/http.go", "/static/%252e%252e/http.go",
		"/api/frames/..%2f..%2fhttp.go/1.jpg", "/static/app.js%00.png",
	} {
		resp, body := rawGet(t, addr, "GET "+p+" HTTP/1.1\r\nHost: page\r\nConnection: close\r\n\r\n")
		if strings.Contains(body, "package dashboard") || strings.Contains(body, "module github.com") {
			t.Errorf("%s: %s served a source file", p, resp.Status)
		}
		if resp.StatusCode == http.StatusOK {
			t.Errorf("%s: got 200, want a refusal or a redirect", p)
		}
	}
	// The real assets are still served.
	for _, p := range []string{"/static/app.js", "/static/vendor/uplot/uPlot.iife.min.js", "/"} {
		if resp, _ := rawGet(t, addr, "GET "+p+" HTTP/1.1\r\nHost: page\r\nConnection: close\r\n\r\n"); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %s, want 200", p, resp.Status)
		}
	}
}

// TestOtherMethods: every route answers only GET (and HEAD); other methods get 405
// with Allow, and with a users file 401 before anything else.
func TestOtherMethods(t *testing.T) {
	open := httptest.NewServer(quietDashboard(t).Handler())
	defer open.Close()
	locked := httptest.NewServer(quietDashboard(t, func(c *Config) { c.UsersFile = writeUsers(t, "", "manager:s3cret") }).Handler())
	defer locked.Close()
	for _, path := range []string{"/", "/static/app.js", "/api/events", "/api/pages", "/api/state", "/api/frames/door/1.jpg", "/api/alerts/1.jpg"} {
		for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"} {
			req, _ := http.NewRequest(m, open.URL+path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(resp.Header.Get("Allow"), "GET") {
				t.Errorf("%s %s: %s, Allow %q; want 405 allowing GET", m, path, resp.Status, resp.Header.Get("Allow"))
			}
			req, _ = http.NewRequest(m, locked.URL+path, nil)
			if resp, err = http.DefaultClient.Do(req); err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s without a login: %s, want 401", m, path, resp.Status)
			}
		}
	}
}

// TestHardeningHeaders: every answer, refusals included, carries the page's
// Content-Security-Policy, nosniff, no framing and no referrer; the JSON is not kept
// in caches.
func TestHardeningHeaders(t *testing.T) {
	d := quietDashboard(t)
	web := httptest.NewServer(d.Handler())
	defer web.Close()
	locked := httptest.NewServer(quietDashboard(t, func(c *Config) { c.UsersFile = writeUsers(t, "", "manager:s3cret") }).Handler())
	defer locked.Close()
	check := func(name string, resp *http.Response) {
		t.Helper()
		h := resp.Header
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s (%s): Content-Security-Policy %q", name, resp.Status, csp)
		}
		for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
			if got := h.Get(k); got != want {
				t.Errorf("%s (%s): %s %q, want %q", name, resp.Status, k, got, want)
			}
		}
	}
	get := func(url string) *http.Response {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for _, p := range []string{"/", "/static/app.js", "/api/pages", "/api/state", "/api/frames/nope/1.jpg", "/nothing"} {
		check(p, get(web.URL+p))
	}
	check("/ without a login", get(locked.URL+"/"))
	req, _ := http.NewRequest("DELETE", web.URL+"/api/state", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	check("DELETE /api/state", resp)
	for _, p := range []string{"/api/pages", "/api/state"} {
		if cc := get(web.URL + p).Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", p, cc)
		}
	}
}

// TestHTTPServerSettings: the server bounds the time and the bytes of a request's
// headers (a client that sends them a byte at a time is cut off) and keep-alive
// idleness; it has no ReadTimeout or WriteTimeout, which would cut the event stream.
func TestHTTPServerSettings(t *testing.T) {
	srv := quietDashboard(t).HTTPServer(context.Background())
	if srv.ReadHeaderTimeout <= 0 || srv.ReadHeaderTimeout > 30*time.Second {
		t.Errorf("ReadHeaderTimeout %v", srv.ReadHeaderTimeout)
	}
	if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 1<<20 {
		t.Errorf("MaxHeaderBytes %d", srv.MaxHeaderBytes)
	}
	if srv.IdleTimeout <= 0 {
		t.Errorf("IdleTimeout %v", srv.IdleTimeout)
	}
	if srv.ReadTimeout != 0 || srv.WriteTimeout != 0 {
		t.Errorf("ReadTimeout %v, WriteTimeout %v: either would end the event stream", srv.ReadTimeout, srv.WriteTimeout)
	}
}

// TestSlowBody: the page sends no bodies. A request that declares one and sends it
// slowly, or never, does not hold its connection: the server has no ReadTimeout (it
// would cut the event stream), and after the handler it reads up to 256 KiB of an
// unread body with no deadline.
func TestSlowBody(t *testing.T) {
	d := quietDashboard(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := d.HTTPServer(context.Background())
	go srv.Serve(ln)
	defer srv.Close()
	for _, req := range []string{
		"POST /api/state HTTP/1.1\r\nHost: page\r\nContent-Length: 100000\r\n\r\nx",
		"GET /api/state HTTP/1.1\r\nHost: page\r\nContent-Length: 100\r\n\r\n",
		"GET /static/app.js HTTP/1.1\r\nHost: page\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
		"GET /api/events HTTP/1.1\r\nHost: page\r\nContent-Length: 10\r\n\r\n",
	} {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, req)
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Errorf("%q: no answer in 3 s: %v", strings.SplitN(req, "\r\n", 2)[0], err)
			conn.Close()
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("%q: %s, want a refusal", strings.SplitN(req, "\r\n", 2)[0], resp.Status)
		}
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Errorf("%q: %s, then %v; want the connection closed at once", strings.SplitN(req, "\r\n", 2)[0], resp.Status, err)
		}
		conn.Close()
	}
	// Requests without a body are still served, keep-alive.
	resp, _ := rawGet(t, ln.Addr().String(), "GET /api/state HTTP/1.1\r\nHost: page\r\nContent-Length: 0\r\n\r\n")
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Errorf("GET with Content-Length: 0: %s (close %v), want 200 kept alive", resp.Status, resp.Close)
	}
}

// TestOddRequests: long or malformed query strings, paths and headers get a 4xx or
// are served, never a 5xx, and the server answers afterwards.
func TestOddRequests(t *testing.T) {
	d := quietDashboard(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := d.HTTPServer(context.Background())
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().String()
	for _, c := range []struct {
		req  string
		want int // 0: any status below 500
	}{
		{"GET /api/state?" + strings.Repeat("a=%zz&", 8<<10) + " HTTP/1.1\r\nHost: page\r\n\r\n", http.StatusOK},
		{"GET /api/state?" + strings.Repeat("a", 100<<10) + " HTTP/1.1\r\nHost: page\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"GET /api/state?;;&&==%%% HTTP/1.1\r\nHost: page\r\n\r\n", http.StatusOK},
		{"GET /% HTTP/1.1\r\nHost: page\r\n\r\n", http.StatusBadRequest},
		{"GET /api/state HTTP/1.1\r\nHost: page\r\nX-Bad: a\x00b\r\n\r\n", http.StatusBadRequest},
		{"GET /api/state HTTP/1.1\r\nHost: page\r\nX" + strings.Repeat("y", 60<<10) + ": 1\r\n\r\n", http.StatusOK},
		{"GET /api/state HTTP/1.1\r\n" + strings.Repeat("X-A: 1\r\n", 9000) + "Host: page\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"GET /api/state HTTP/9.9\r\nHost: page\r\n\r\n", http.StatusHTTPVersionNotSupported},
		{"GET " + strings.Repeat("/x", 20<<10) + " HTTP/1.1\r\nHost: page\r\n\r\n", http.StatusNotFound},
		{"GET /api/events?lastEventId=" + strings.Repeat("9", 4000) + " HTTP/1.1\r\nHost: page\r\nLast-Event-ID: \xff\xfe\r\nConnection: close\r\n\r\n", http.StatusOK},
	} {
		line := c.req
		if len(line) > 60 {
			line = line[:60]
		}
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, c.req)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err != nil {
			t.Errorf("%q: %v", line, err)
			continue
		}
		if (c.want == 0 && resp.StatusCode >= 500) || (c.want != 0 && resp.StatusCode != c.want) {
			t.Errorf("%q: %s, want %d", line, resp.Status, c.want)
		}
	}
	if resp, _ := rawGet(t, addr, "GET /api/pages HTTP/1.1\r\nHost: page\r\nConnection: close\r\n\r\n"); resp.StatusCode != http.StatusOK {
		t.Errorf("afterwards: %s", resp.Status)
	}
}

// TestFramesOfUnknownCameras: a frame of a camera, an id or an alert the dashboard
// does not hold is a plain 404 that does not echo the path back.
func TestFramesOfUnknownCameras(t *testing.T) {
	web := httptest.NewServer(quietDashboard(t).Handler())
	defer web.Close()
	for _, p := range []string{
		"/api/frames/nope/1.jpg", "/api/frames/%3Cscript%3Ealert(1)%3C%2Fscript%3E/1.jpg", "/api/frames/door/1.png",
		"/api/frames/door/abc.jpg", "/api/frames/door/-1.jpg", "/api/frames/door/18446744073709551616.jpg",
		"/api/frames/door/1.jpg", "/api/frames/door/.jpg", "/api/frames/door/%2e%2e.jpg", "/api/frames/door/1.jpg/x",
		"/api/alerts/1.jpg", "/api/alerts/0.jpg", "/api/alerts/%3Cb%3E.jpg", "/api/frames/door%2F..%2Fx/1.jpg",
		"/api/frames/door/1-1.jpg", "/api/alerts/1-1.jpg", "/api/frames/door/-1.jpg", "/api/alerts/-1.jpg", "/api/alerts/1-.jpg",
	} {
		resp, err := http.Get(web.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %s, want 404", p, resp.Status)
		}
		if ct := resp.Header.Get("Content-Type"); strings.Contains(string(b), "<") || !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("%s: %s %q %q", p, resp.Status, ct, b)
		}
	}
}

// TestEventStreamBurst: one client opening many event streams at once gets
// --max-pages of them and 503 for the rest, and every one it closes is let go.
func TestEventStreamBurst(t *testing.T) {
	d := quietDashboard(t, func(c *Config) { c.MaxPages = 4 })
	base, stop := context.WithCancel(context.Background())
	web := httptest.NewUnstartedServer(d.Handler())
	web.Config.BaseContext = func(net.Listener) context.Context { return base }
	web.Start()
	defer func() { stop(); web.Close() }()
	tr := &http.Transport{MaxConnsPerHost: 0}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var (
		mu     sync.Mutex
		counts = map[int]int{}
		bodies []io.Closer
		wg     sync.WaitGroup
	)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(web.URL + "/api/events")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				counts[-1]++
				return
			}
			counts[resp.StatusCode]++
			if resp.StatusCode == http.StatusOK {
				bodies = append(bodies, resp.Body)
			} else {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if counts[http.StatusOK] != 4 || counts[http.StatusServiceUnavailable] != 36 {
		t.Errorf("40 streams at once with --max-pages 4: %v, want 4 × 200 and 36 × 503", counts)
	}
	for _, b := range bodies {
		b.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for d.hub.subscribers() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d pages still open 5 s after every stream closed", d.hub.subscribers())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPageInsertsText: the page's script puts what the dashboard sends (camera and
// rule names, labels, problems) into the document only as text or attributes, never
// as markup.
func TestPageInsertsText(t *testing.T) {
	js, err := os.ReadFile("web/app.js")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setHTML|createContextualFragment|srcdoc`).FindAll(js, -1); len(m) > 0 {
		t.Errorf("web/app.js inserts markup: %q", m)
	}
	html, err := os.ReadFile("web/index.html")
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?i)<script>|<script [^>]*>[^<]|\son[a-z]+=`).Match(html) {
		t.Error("web/index.html has an inline script or event handler, which the Content-Security-Policy refuses")
	}
}
