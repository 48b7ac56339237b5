package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/atelier-vision/atelier/client"
)

// writeFrames writes n small PNG frames into a new folder.
func writeFrames(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		img := image.NewRGBA(image.Rect(0, 0, 64, 48))
		for p := range img.Pix {
			img.Pix[p] = uint8(i * 40)
		}
		img.Set(i, i, color.White)
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("f%02d.png", i)))
		if err != nil {
			t.Fatal(err)
		}
		png.Encode(f, img)
		f.Close()
	}
	return dir
}

// fastClient connects the way the CLI does.
func fastClient(t *testing.T, addr string) *client.Client {
	t.Helper()
	c, err := client.New(addr, ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// events reads a page's Server-Sent Events.
type events struct {
	t    *testing.T
	body io.Closer
	ch   chan [2]string
}

func openEvents(t *testing.T, url string) *events {
	t.Helper()
	return openEventsAs(t, http.DefaultClient, url, "", "")
}

// openEventsAs opens the event stream through hc with a Basic login (none if user
// is empty).
func openEventsAs(t *testing.T, hc *http.Client, url, user, password string) *events {
	t.Helper()
	resp := getOpen(t, hc, url+"/api/events", user, password)
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET /api/events: %s, want 200", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("got Content-Type %q, want text/event-stream", ct)
	}
	e := &events{t: t, body: resp.Body, ch: make(chan [2]string, 1024)}
	go func() {
		defer close(e.ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 8<<20)
		var name string
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				name = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok {
				e.ch <- [2]string{name, v}
			}
		}
	}()
	return e
}

// wait returns the data of the first event called name that ok accepts.
func (e *events) wait(name string, within time.Duration, ok func(data string) bool) string {
	e.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev, open := <-e.ch:
			if !open {
				e.t.Fatalf("the event stream ended while waiting for %s", name)
			}
			if ev[0] == name && ok(ev[1]) {
				return ev[1]
			}
		case <-deadline:
			e.t.Fatalf("no matching %s event within %v", name, within)
		}
	}
}

func decodeState(t *testing.T, data string) state {
	t.Helper()
	var s state
	if err := json.Unmarshal([]byte(data), &s); err != nil {
		t.Fatalf("state event: %v", err)
	}
	return s
}

// TestDashboardAgainstFakeServer runs the dashboard against a stand-in server: a
// good camera goes live while a bad one reports its source error; frames and alert
// thumbnails are served as JPEG; stopping the server shows "reconnecting" and
// starting it again on the same port brings everything back; and when the dashboard
// stops, nothing it started is left running.
func TestDashboardAgainstFakeServer(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	fake := startFake(t, "")
	c := fastClient(t, fake.addr)
	cfg := DefaultConfig()
	cfg.Addr, cfg.FPS, cfg.ViewFPS = fake.addr, 20, 10
	cfg.Cameras = []Camera{{"good", writeFrames(t, 5)}, {"bad", "/nonexistent/door.mp4"}}
	cfg.Rules = DefaultRules
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := New(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { d.Run(ctx); close(ran) }()
	web := httptest.NewServer(d.Handler())
	ev := openEvents(t, web.URL)

	var h hello
	if err := json.Unmarshal([]byte(ev.wait("hello", 5*time.Second, func(string) bool { return true })), &h); err != nil {
		t.Fatal(err)
	}
	if got := len(h.Cameras); got != 2 {
		t.Fatalf("hello has %d cameras, want 2", got)
	}
	if got := len(h.Rules); got != 4 {
		t.Errorf("hello has %d rules, want 4 (2 default rules x 2 cameras)", got)
	}
	s := decodeState(t, ev.wait("state", 10*time.Second, func(data string) bool {
		s := decodeState(t, data)
		return s.Conn.State == connConnected && s.Cameras["good"].State == camLive && s.Cameras["bad"].State == camSourceError
	}))
	if p := s.Cameras["bad"].Problem; !strings.Contains(p, "/nonexistent/door.mp4") || !strings.Contains(p, "no such file") {
		t.Errorf("bad camera's problem %q, want it to name the source and say it does not exist", p)
	}
	if len(s.Conn.Models) != 2 || s.Conn.Models[0].Role != "classifier" || s.Conn.Models[1].Role != "detector" {
		t.Errorf("models %+v, want the fake's classifier and detector", s.Conn.Models)
	}

	var views map[string]view
	json.Unmarshal([]byte(ev.wait("frames", 5*time.Second, func(data string) bool { return strings.Contains(data, `"good"`) })), &views)
	v := views["good"]
	if v.W != 64 || v.H != 48 || len(v.Dets) != 1 || v.Dets[0].Label != "Dress" {
		t.Errorf("frame view %+v, want 64x48 with one Dress", v)
	}
	getJPEG(t, web.URL+"/"+v.Src, 64, 48)

	var a alert
	json.Unmarshal([]byte(ev.wait("alert", 5*time.Second, func(string) bool { return true })), &a)
	if a.Camera != "good" || a.Rule != "dress" || a.Label != "Dress" || a.Thumb == "" {
		t.Errorf("alert %+v, want camera good, rule dress, label Dress, with a thumbnail", a)
	}
	getJPEG(t, web.URL+"/"+a.Thumb, 64, 48)
	for _, sc := range fake.streamConfigs() {
		if r := sc.Options.AlertRules; len(r) != 2 || r[0].Categories[0] != "Dress" || r[1].Categories[0] != "Coat" {
			t.Errorf("stream of %s sent rules %v, want dress=Dress and suit-like=Coat", sc.Options.CameraId, r)
		}
	}

	addr := fake.addr
	fake.srv.Stop()
	ev.wait("state", 10*time.Second, func(data string) bool {
		s := decodeState(t, data)
		return s.Conn.State == connReconnecting && s.Cameras["good"].State == camReconnecting && strings.Contains(s.Conn.Problem, addr)
	})
	fake = startFake(t, addr)
	ev.wait("state", 15*time.Second, func(data string) bool {
		s := decodeState(t, data)
		return s.Conn.State == connConnected && s.Cameras["good"].State == camLive && s.Alerts.Watching
	})
	last := v.ID
	ev.wait("frames", 5*time.Second, func(data string) bool {
		var vs map[string]view
		json.Unmarshal([]byte(data), &vs)
		return vs["good"].ID > last
	})

	ev.body.Close()
	web.Close()
	cancel()
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of its context ending")
	}
	c.Close()
	fake.srv.Stop()
	goleak.VerifyNone(t, leaks)
}

func getJPEG(t *testing.T, url string, w, h int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("GET %s: %s %s, want 200 image/jpeg", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	img, err := jpeg.Decode(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: not a JPEG: %v", url, err)
	}
	if got := img.Bounds().Size(); got != image.Pt(w, h) {
		t.Errorf("GET %s: %v, want %dx%d", url, got, w, h)
	}
}

// TestUnknownFramesAre404 checks the frame routes refuse what they do not hold.
func TestUnknownFramesAre404(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Cameras = []Camera{{"door", "x.mp4"}}
	d, err := New(nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(d.Handler())
	defer web.Close()
	for _, path := range []string{"/api/frames/door/1.jpg", "/api/frames/nope/1.jpg", "/api/frames/door/x.jpg", "/api/alerts/3.jpg", "/api/frames/door/1.png"} {
		resp, err := http.Get(web.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
	for _, path := range []string{"/", "/static/app.js", "/static/vendor/uplot/uPlot.iife.min.js", "/static/vendor/uplot/LICENSE"} {
		resp, err := http.Get(web.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", path, resp.StatusCode)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q, want default-src 'self'", path, csp)
		}
	}
}

// TestServerEndingCallsIsBackedOff: when atelierd ends a camera's stream and the alert
// watch without an error while the camera's frames keep coming, the dashboard tries
// again with backoff (not in a tight loop) and the page says what happened.
func TestServerEndingCallsIsBackedOff(t *testing.T) {
	fake := startFake(t, "")
	fake.ending.Store(true)
	c := fastClient(t, fake.addr)
	defer c.Close()
	cfg := DefaultConfig()
	cfg.Addr, cfg.Cameras, cfg.Rules = fake.addr, []Camera{{"door", writeFrames(t, 5)}}, DefaultRules
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	d, stop := runDashboard(t, c, cfg)
	time.Sleep(3 * time.Second)
	s := d.snapshot(time.Now(), false)
	stop()
	// Backoff from 0.5 s, doubling: about 3 attempts in 3 s; without it, one a frame.
	if n := len(fake.streamConfigs()); n < 2 || n > 6 {
		t.Errorf("%d streams opened in 3 s, want 2 to 6", n)
	}
	if got, want := s.Cameras["door"].Problem, "atelierd ended the call"; got != want {
		t.Errorf("the camera's problem is %q, want %q", got, want)
	}
	if got, want := s.Alerts.Problem, "atelierd ended the call"; got != want {
		t.Errorf("the alert feed's problem is %q, want %q", got, want)
	}
}
