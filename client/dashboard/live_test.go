//go:build cgo

package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/atelier-vision/atelier/client"
	"github.com/atelier-vision/atelier/internal/servertest"
	"github.com/atelier-vision/atelier/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(servertest.Main(m)) }

// footage is what scripts/demo-videos.sh wrote: each camera's video and its scenes.
type footage struct {
	Dir     string
	Cameras []struct {
		Name           string `json:"name"`
		File           string `json:"file"`
		FramesPerScene int    `json:"frames_per_scene"`
		Scenes         []struct {
			File   string   `json:"file"`
			Labels []string `json:"labels"`
		} `json:"scenes"`
	} `json:"cameras"`
}

// makeFootage renders the demo's camera videos (the same script make demo runs).
func makeFootage(t *testing.T, cameras, scenes int, secs string) *footage {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("bash", filepath.Join(testenv.Root(t), "scripts", "demo-videos.sh"), dir, fmt.Sprint(cameras), fmt.Sprint(scenes), secs, "10")
	cmd.Env = append(os.Environ(), "ATELIER_PYTHON="+testenv.Python(t))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/demo-videos.sh: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "cameras.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := &footage{Dir: dir}
	if err := json.Unmarshal(data, f); err != nil {
		t.Fatal(err)
	}
	return f
}

// labelsAt returns the categories in the scene a camera's frame id shows (ids count
// from 1 and the video loops).
func (f *footage) labelsAt(camera string, frameID uint64) []string {
	for _, c := range f.Cameras {
		if c.Name == camera {
			n := uint64(c.FramesPerScene * len(c.Scenes))
			return c.Scenes[(frameID-1)%n/uint64(c.FramesPerScene)].Labels
		}
	}
	return nil
}

// restart starts atelierd again on addr (the port a killed one had) and waits until
// it is SERVING; it is stopped when the test ends. The port can be briefly taken: the
// dashboard keeps dialing it, and a dial to a loopback port nobody listens on can pick
// that very port as its own and connect to itself (TCP's simultaneous open) until gRPC
// gives the odd connection up. An atelierd that exits for that is started again.
func restart(t *testing.T, addr string) {
	t.Helper()
	bin, err := servertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	models, err := servertest.ModelDir()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		logf, err := os.Create(filepath.Join(t.TempDir(), "atelierd.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "--listen", addr, "--model-dir", models)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			<-exited
			logf.Close()
		})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := c.Health(ctx, "")
			cancel()
			if err == nil && st == healthpb.HealthCheckResponse_SERVING {
				return
			}
			log, _ := os.ReadFile(logf.Name())
			select {
			case <-exited:
				if strings.Contains(string(log), "address already in use") && time.Now().Before(deadline) {
					time.Sleep(100 * time.Millisecond)
					break // start it again
				}
				t.Fatalf("atelierd on %s exited:\n%s", addr, log)
			default:
				if time.Now().After(deadline) {
					t.Fatalf("atelierd on %s not SERVING after 60 s (%v):\n%s", addr, err, log)
				}
				time.Sleep(100 * time.Millisecond)
				continue
			}
			break
		}
	}
}

// shownAlert is an alert as the page shows it.
type shownAlert struct {
	Camera, Label, Rule string
	Frame               uint64
	CaptureMS, ShownMS  float64
}

// TestDashboardInBrowser is the dashboard end to end: the real atelierd with the
// built models, three cameras looping held-out outfit scenes (an MP4, an MJPEG file
// and an MP4, rendered by scripts/demo-videos.sh), and the page in headless chromium.
// The three tiles appear and their frames advance; the tally chart has data; an
// alert for a scene that holds a dress is on the page within 2 s of the frame's
// capture; killing atelierd shows "reconnecting", and once it is back the page
// recovers by itself. Screenshots at 1280x800 and phone size are taken on the way.
func TestDashboardInBrowser(t *testing.T) {
	testenv.ModelDir(t, "classifier", "detector")
	ctx := browser(t, 1280, 800)
	srv := servertest.Start(t)
	foot := makeFootage(t, 3, 4, "1.5")

	var log logBuffer
	cfg := DefaultConfig()
	cfg.Addr, cfg.Log, cfg.Rules = srv.Addr, log.logger(), DefaultRules
	for _, c := range foot.Cameras {
		cfg.Cameras = append(cfg.Cameras, Camera{c.Name, filepath.Join(foot.Dir, c.File)})
	}
	url := startDashboard(t, cfg)
	defer func() {
		if t.Failed() {
			t.Logf("dashboard log:\n%s", log.String())
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}

	waitFor(t, ctx, "three camera tiles", 10*time.Second, `document.querySelectorAll(".tile").length === 3`)
	took := waitFor(t, ctx, "a frame on every tile", 60*time.Second, `[...document.querySelectorAll(".tile")].every(t => +t.dataset.frame > 0)`)
	t.Logf("first frames on all three tiles after %v", took.Round(time.Millisecond))
	first := tileFrames(t, ctx)
	waitFramesAdvance(t, ctx, first, 10*time.Second)
	waitFor(t, ctx, "boxes drawn on a tile", 20*time.Second, `[...document.querySelectorAll(".tile")].some(t => +t.dataset.boxes > 0)`)
	waitFor(t, ctx, "the store tally chart has data", 30*time.Second,
		`+document.querySelector("#store-chart").dataset.points >= 3 && +document.querySelector("#store-chart").dataset.total > 0 &&
		 document.querySelector("#store-chart canvas") !== null`)

	// An alert for a dress, from a scene that holds one, within 2 s of its capture.
	var good *shownAlert
	var seen []shownAlert
	deadline := time.Now().Add(60 * time.Second)
	for good == nil && time.Now().Before(deadline) {
		seen = eval[[]shownAlert](t, ctx, `[...document.querySelectorAll(".alert")].map(a => ({Camera: a.dataset.camera,
			Label: a.dataset.label, Rule: a.dataset.rule, Frame: +a.dataset.frame, CaptureMS: +a.dataset.captureMs, ShownMS: +a.dataset.shownMs}))`)
		for i, a := range seen {
			if a.Label == "Dress" && a.ShownMS-a.CaptureMS <= 2000 && slices.Contains(foot.labelsAt(a.Camera, a.Frame), "Dress") {
				good = &seen[i]
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	var report []string
	for _, a := range seen {
		report = append(report, fmt.Sprintf("%s on %s frame %d (scene: %s) shown %.0f ms after capture",
			a.Label, a.Camera, a.Frame, strings.Join(foot.labelsAt(a.Camera, a.Frame), ","), a.ShownMS-a.CaptureMS))
	}
	if good == nil {
		t.Fatalf("no Dress alert from a scene with a dress within 2 s of capture; the page shows:\n%s", strings.Join(report, "\n"))
	}
	t.Logf("alert: Dress on %s frame %d, on the page %.0f ms after the frame's capture; all alerts so far:\n%s",
		good.Camera, good.Frame, good.ShownMS-good.CaptureMS, strings.Join(report, "\n"))

	shots := screenshotDir(t)
	screenshot(t, ctx, 1280, 800, false, shots, "dashboard-1280x800.png")
	screenshot(t, ctx, 390, 844, true, shots, "dashboard-phone.png")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}

	// Kill atelierd: the page says "reconnecting"; start it again: the page recovers.
	addr := srv.Addr
	if err := srv.Stop(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	took = waitFor(t, ctx, `"reconnecting" on the page`, 15*time.Second,
		`document.querySelector("#conn").textContent.includes("reconnecting") && document.querySelector("#conn").dataset.state === "reconnecting"`)
	t.Logf(`"reconnecting" on the page %v after SIGKILL`, took.Round(time.Millisecond))
	waitFor(t, ctx, "the tiles say reconnecting", 15*time.Second,
		`[...document.querySelectorAll(".tile")].every(t => t.dataset.state === "reconnecting")`)
	restart(t, addr)
	t.Logf("atelierd serving again %v after the kill", time.Since(killed).Round(time.Millisecond))
	took = waitFor(t, ctx, "the page connected again", 15*time.Second, `document.querySelector("#conn").dataset.state === "connected"`)
	before := tileFrames(t, ctx)
	waitFramesAdvance(t, ctx, before, 20*time.Second)
	waitFor(t, ctx, "every tile live again", 10*time.Second, `[...document.querySelectorAll(".tile")].every(t => t.dataset.state === "live")`)
	t.Logf("page connected %v after atelierd was back; every tile live and advancing again", took.Round(time.Millisecond))
	latencies := eval[[]float64](t, ctx, `[...document.querySelectorAll(".alert")].map(a => a.dataset.shownMs - a.dataset.captureMs)`)
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		t.Logf("%d alerts on the page: capture to page %.0f ms median, %.0f ms max", n, latencies[n/2], latencies[n-1])
	}
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(line, "msg=alert") {
			t.Logf("dashboard: %s", line)
		}
	}
	for _, want := range []string{"atelierd unreachable", "camera stream ended", "connected to atelierd"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the dashboard's log lacks %q", want)
		}
	}
}
