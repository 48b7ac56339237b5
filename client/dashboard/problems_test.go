package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/atelier-vision/atelier/client"
)

// runDashboard makes a dashboard for cfg on c and runs it; stop ends Run and waits for
// it, and runs at the test's end if not called before.
func runDashboard(t *testing.T, c *client.Client, cfg Config) (d *Dashboard, stop func()) {
	t.Helper()
	d, err := New(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { d.Run(ctx); close(ran) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-ran }) }
	t.Cleanup(stop)
	return d, stop
}

// startDashboard runs a dashboard for cfg until the test ends and returns its URL.
func startDashboard(t *testing.T, cfg Config) string {
	t.Helper()
	c, err := client.New(cfg.Addr, ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { d.Run(ctx); close(ran) }()
	web := httptest.NewUnstartedServer(d.Handler())
	web.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	web.Start()
	t.Cleanup(func() {
		cancel()
		web.Close()
		<-ran
		c.Close()
	})
	return web.URL
}

// TestPageShowsProblems opens the page in chromium with bad input: a camera whose
// source does not exist and a rule file with a syntax error (against the stand-in
// server), then a server that is not there. Each problem is on the page and in the
// log, and the good camera's frames keep coming while the bad one fails.
func TestPageShowsProblems(t *testing.T) {
	ctx := browser(t, 1280, 800)
	fake := startFake(t, "")
	rules := filepath.Join(t.TempDir(), "rules.json")
	os.WriteFile(rules, []byte("{\"rules\": [\n  {\"name\": \"dress\", \"categories\": [\"Dress\"],}\n]}\n"), 0o644)
	_, rerr := ReadRules(rules)
	if rerr == nil {
		t.Fatal("the bad rule file was accepted")
	}
	var log logBuffer
	cfg := DefaultConfig()
	// A rule of a category no model knows ("dress" for "Dress"): off, and said so.
	lower := Rule{Name: "lower", Categories: []string{"dress"}}
	cfg.Addr, cfg.Log, cfg.Rules, cfg.RulesProblem = fake.addr, log.logger(), []Rule{DefaultRules[0], DefaultRules[1], lower}, rerr.Error()
	cfg.Cameras = []Camera{{"good", writeFrames(t, 5)}, {"bad", "/nonexistent/door.mp4"}}
	url := startDashboard(t, cfg)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "two tiles", 10*time.Second, `document.querySelectorAll(".tile").length === 2`)
	waitFor(t, ctx, "the bad camera's tile shows its error", 10*time.Second,
		`document.querySelector('.tile[data-camera="bad"]').dataset.state === "source error" &&
		 document.querySelector('.tile[data-camera="bad"] .problem').textContent.includes("/nonexistent/door.mp4: no such file")`)
	waitFor(t, ctx, "the good camera shows frames", 10*time.Second, `+document.querySelector('.tile[data-camera="good"]').dataset.frame > 0`)
	waitFramesAdvance(t, ctx, map[string]float64{"good": tileFrames(t, ctx)["good"]}, 5*time.Second)
	waitFor(t, ctx, "the banner names the rule file and its line", 5*time.Second,
		`document.querySelector("#problems").textContent.includes("rule file `+rules+`, line 2")`)
	waitFor(t, ctx, "the banner names the bad camera", 5*time.Second,
		`document.querySelector("#problems").textContent.includes("Camera bad: framesource: stat /nonexistent/door.mp4")`)
	waitFor(t, ctx, "the banner names the rule of an unknown category", 5*time.Second,
		`document.querySelector("#problems").textContent.includes('Alert rule "lower" (every camera) is off: no model on atelierd knows the category "dress" (did you mean "Dress"?)')`)
	screenshot(t, ctx, 1280, 800, false, screenshotDir(t), "dashboard-problems.png")
	for _, want := range []string{"bad rule file", "line 2", `msg="camera source failed" camera=bad source=/nonexistent/door.mp4`,
		`msg="alert rule off" problem="Alert rule \"lower\" (every camera) is off`} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log.String())
		}
	}

	// A server that is not there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	var log2 logBuffer
	cfg.Addr, cfg.Log, cfg.RulesProblem = dead, log2.logger(), ""
	cfg.Cameras = cfg.Cameras[:1]
	if err := chromedp.Do(ctx, chromedp.Navigate(startDashboard(t, cfg))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the banner says atelierd cannot be reached", 10*time.Second,
		`document.querySelector("#problems").textContent.includes("cannot reach atelierd at `+dead+`") &&
		 document.querySelector("#problems").textContent.includes("connection refused") &&
		 document.querySelector("#conn").dataset.state === "connecting"`)
	if want := "cannot reach atelierd at " + dead; !strings.Contains(log2.String(), want) {
		t.Errorf("the log lacks %q:\n%s", want, log2.String())
	}
}

// TestPageFollowsTheDashboard, in chromium against a stand-in server: a new alert is
// highlighted, sound and notifications are off by default, a rule's name that is
// markup stays text; the charts keep no more than --history; and a page left open
// while the dashboard is restarted with other cameras shows the new ones and their
// alerts, although the new process numbers its alerts from 1 again.
func TestPageFollowsTheDashboard(t *testing.T) {
	ctx := browser(t, 1280, 800)
	fake := startFake(t, "")
	// A rule name that is markup: the page shows it as text and runs nothing.
	hostile := `<img src=x onerror="window.pwned=1">`
	newDashboard := func(camera string) http.Handler {
		cfg := DefaultConfig()
		cfg.Addr, cfg.FPS, cfg.History = fake.addr, 20, 3*time.Second
		cfg.Rules = []Rule{{Name: hostile, Categories: []string{"Dress"}}}
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
		cfg.Cameras = []Camera{{camera, writeFrames(t, 5)}}
		c, err := client.New(cfg.Addr, ClientOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() }) // after the dashboard stops (cleanups run last first)
		d, _ := runDashboard(t, c, cfg)
		return d.Handler()
	}
	var current atomic.Value
	current.Store(newDashboard("old"))
	web := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		current.Load().(http.Handler).ServeHTTP(w, r)
	}))
	base, stop := context.WithCancel(context.Background())
	web.Config.BaseContext = func(net.Listener) context.Context { return base } // so that Close does not wait for the page
	web.Start()
	t.Cleanup(func() { stop(); web.Close() })
	if err := chromedp.Do(ctx, chromedp.Navigate(web.URL)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "alerts from the first dashboard", 10*time.Second, `document.querySelectorAll('.alert[data-camera="old"]').length >= 3`)
	if !eval[bool](t, ctx, `document.querySelector(".alert.new .badge") !== null`) {
		t.Error("no new alert is highlighted")
	}
	if eval[bool](t, ctx, `document.querySelector("#sound").checked || document.querySelector("#notify").checked`) {
		t.Error("sound or notifications are on by default")
	}
	if got := eval[string](t, ctx, `document.querySelector(".alert .meta").textContent`); !strings.Contains(got, "rule "+hostile) {
		t.Errorf("an alert's text is %q, want it to show the rule's name %q as text", got, hostile)
	}
	if eval[bool](t, ctx, `window.pwned === 1 || document.querySelector("#alerts img:not([src^='api/alerts/'])") !== null`) {
		t.Error("a rule's name was taken as markup")
	}
	time.Sleep(6 * time.Second) // six samples and more since the page opened
	if n := eval[float64](t, ctx, `+document.querySelector("#store-chart").dataset.points`); n < 1 || n > 4 {
		t.Errorf("the store chart holds %v samples, want 1 to 4 (3 s of history, one a second)", n)
	}

	current.Store(newDashboard("new"))
	web.CloseClientConnections() // the old process is gone; the page reconnects to the new one
	waitFor(t, ctx, "the new dashboard's camera, and only it", 10*time.Second,
		`document.querySelector('.tile[data-camera="new"]') !== null && document.querySelector('.tile[data-camera="old"]') === null`)
	waitFor(t, ctx, "the new dashboard's first alert", 5*time.Second, `document.querySelector('.alert[data-camera="new"][data-seq="1"]') !== null`)
	// Its frames and thumbnails have URLs of their own: ids start at 1 again in a new
	// process, and the browser keeps the old process's JPEGs (immutable).
	resp, err := http.Get(web.URL + "/api/state")
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Boot string }
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	waitFor(t, ctx, "the new dashboard's frame and thumbnail URLs name it", 5*time.Second,
		`document.querySelector('.tile[data-camera="new"] img').src.includes("/api/frames/new/`+h.Boot+`-") &&
		 document.querySelector('.alert[data-camera="new"][data-seq="1"] img').src.includes("/api/alerts/`+h.Boot+`-1.jpg")`)
	// The charts' axis labels stay short enough for the axis.
	if got := eval[string](t, ctx, `[999, 1234, 12345, 123456, 1234567].map(fmtCount).join(" ")`); got != "999 1.2k 12k 123k 1.2M" {
		t.Errorf("axis labels %q, want 999 1.2k 12k 123k 1.2M", got)
	}
}
