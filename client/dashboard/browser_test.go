package dashboard

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/atelier-vision/atelier/internal/testcerts"
	"github.com/atelier-vision/atelier/internal/testenv"
)

// chromiumPath finds Debian's chromium ($ATELIER_CHROMIUM overrides): missing, it
// skips the test, or fails it under CI=true.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ATELIER_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(t, "chromium", "run `make setup`, which installs Debian's chromium package")
	return ""
}

// browser starts a headless chromium with a w x h window (and extra options) and
// returns its context.
func browser(t *testing.T, w, h int, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(w, h),
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(w), int64(h))); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// eval runs a JavaScript expression in the page and returns its value.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript expression until it is true, and returns how long that took.
func waitFor(t *testing.T, ctx context.Context, what string, within time.Duration, expr string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")")); err == nil && ok {
			return time.Since(start)
		}
		if time.Since(start) > within {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#conn").textContent + " | " + document.querySelector("#problems").textContent + " | tiles " +
				[...document.querySelectorAll(".tile")].map(t => t.dataset.camera + ":" + t.dataset.state + ":" + t.dataset.frame).join(" ")`))
			t.Fatalf("%s: not within %v (page: %s)", what, within, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tileFrames returns each tile's shown frame id.
func tileFrames(t *testing.T, ctx context.Context) map[string]float64 {
	t.Helper()
	return eval[map[string]float64](t, ctx, `Object.fromEntries([...document.querySelectorAll(".tile")].map(t => [t.dataset.camera, +t.dataset.frame]))`)
}

// waitFramesAdvance waits until every tile shows a newer frame than in before.
func waitFramesAdvance(t *testing.T, ctx context.Context, before map[string]float64, within time.Duration) map[string]float64 {
	t.Helper()
	var cond string
	for cam, id := range before {
		cond += fmt.Sprintf(`+document.querySelector('.tile[data-camera="%s"]').dataset.frame > %v && `, cam, id)
	}
	waitFor(t, ctx, "every tile's frame advances", within, cond+"true")
	return tileFrames(t, ctx)
}

// screenshot saves the page as seen at w x h to dir/name.
func screenshot(t *testing.T, ctx context.Context, w, h int, mobile bool, dir, name string) {
	t.Helper()
	opts := []chromedp.EmulateViewportOption{}
	if mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulatePortrait)
	}
	err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(w), int64(h), opts...),
		chromedp.Sleep(1500*time.Millisecond)) // the layout settles and the charts redraw at the new width
	var png []byte
	if err == nil {
		png, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
	}
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s: %d bytes", filepath.Join(dir, name), len(png))
}

// screenshotDir is $ATELIER_SCREENSHOTS (make screenshots sets docs/images), else a
// temporary folder: the screenshots are always taken.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("ATELIER_SCREENSHOTS"); d != "" {
		return d
	}
	return t.TempDir()
}

// logBuffer is a log the test can read while the dashboard writes it.
type logBuffer struct{ testenv.Buffer }

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// TestPageOverHTTPSWithLogin opens the page in chromium over HTTPS with a login
// (--listen-tls-cert, --users-file, against the stand-in server): it goes live. With
// --max-pages 1 a second tab says it cannot connect because too many pages are open,
// and goes live once the first tab leaves the page (which lets go of its stream even
// when the browser keeps it in its back/forward cache).
func TestPageOverHTTPSWithLogin(t *testing.T) {
	ctx := browser(t, 1280, 800, chromedp.Flag("ignore-certificate-errors", true))
	fake := startFake(t, "")
	pair := testcerts.NewCA(t, "page").Issue(t, "dashboard", testcerts.Options{})
	cfg := DefaultConfig()
	cfg.Addr, cfg.Cameras, cfg.Rules = fake.addr, []Camera{{"door", writeFrames(t, 5)}}, DefaultRules
	cfg.Log = slog.New(slog.DiscardHandler)
	cfg.TLSCert, cfg.TLSKey, cfg.MaxPages = pair.CertFile, pair.KeyFile, 1
	cfg.UsersFile = writeUsers(t, "", "manager:s3cret")
	c := fastClient(t, fake.addr)
	t.Cleanup(func() { c.Close() })
	d, _ := runDashboard(t, c, cfg)
	url := "https://" + serveDashboard(t, d) + "/"
	login := network.Headers{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("manager:s3cret"))}

	open := func(tab context.Context) {
		t.Helper()
		_, err := chromedp.Call(tab, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: login})
		if err == nil {
			err = chromedp.Do(tab, chromedp.Navigate(url))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	open(ctx)
	waitFor(t, ctx, "the page is connected and the camera live", 10*time.Second,
		`location.protocol === "https:" && document.querySelector("#conn").dataset.state === "connected" &&
		 document.querySelector('.tile[data-camera="door"]').dataset.state === "live" &&
		 +document.querySelector('.tile[data-camera="door"]').dataset.frame > 0`)
	waitFramesAdvance(t, ctx, tileFrames(t, ctx), 5*time.Second)

	second, cancel := chromedp.NewContext(ctx)
	defer cancel()
	open(second)
	waitFor(t, second, "the second tab says too many pages are open", 10*time.Second,
		`document.querySelector("#conn").dataset.state === "too many open pages" &&
		 document.querySelector("#problems").textContent.includes("too many open pages")`)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, second, "the second tab goes live once the first has left", 15*time.Second,
		`document.querySelector("#conn").dataset.state === "connected" &&
		 document.querySelector('.tile[data-camera="door"]').dataset.state === "live" &&
		 document.querySelector("#health-list").textContent.includes("1 of 1, 1 refused")`)
}
