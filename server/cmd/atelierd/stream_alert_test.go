package main

import (
	"context"
	"fmt"
	"image"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/atelier-vision/atelier/client/framesource"
	"github.com/atelier-vision/atelier/internal/fashionmnist"
	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

const dress = 3 // Fashion-MNIST's class index of Dress

// confident returns test items that the served classifier labels correctly with a
// score of at least 0.85 (trained with label smoothing, it scores at most about 0.91):
// n Dress items and m items of the other classes, taking the classes in turn. It asks
// the server, so the video test below rests on measured answers, not on hopes.
func confident(t *testing.T, conn *grpc.ClientConn, set *fashionmnist.Set, n, m int) (dresses, others []int) {
	t.Helper()
	perClass := map[int][]int{}
	for start := 0; start < 1024 && (len(perClass[dress]) < n || len(perClass) < 10); start += 64 {
		req := &pb.ClassifyRequest{TopK: proto.Int32(1)}
		for i := start; i < start+64; i++ {
			req.Images = append(req.Images, encoded(greyPNG(t, set.Images[i])))
		}
		resp, err := pb.NewClassifyServiceClient(conn).Classify(ctxFor(t, time.Minute), req)
		if err != nil {
			t.Fatal(err)
		}
		for j, c := range resp.Classifications {
			label, best := int(set.Labels[start+j]), c.Predictions[0]
			if int(best.ClassIndex) == label && best.Score >= 0.85 {
				perClass[label] = append(perClass[label], start+j)
			}
		}
	}
	if len(perClass[dress]) < n {
		t.Fatalf("the classifier is confident (>= 0.85) on %d Dress test items, want %d: is it trained?", len(perClass[dress]), n)
	}
	for round := 0; len(others) < m; round++ {
		before := len(others)
		for class := range 10 {
			if class != dress && round < len(perClass[class]) && len(others) < m {
				others = append(others, perClass[class][round])
			}
		}
		if len(others) == before {
			t.Fatalf("only %d confidently classified items of other classes, want %d", len(others), m)
		}
	}
	return perClass[dress][:n], others
}

// dressVideo composes the test video: frames 0-19 show other garments, 20-39 a Dress
// (20 different Dress items), 40-59 other garments again. It returns each frame's
// pixels and the ground-truth count of each label.
func dressVideo(t *testing.T, conn *grpc.ClientConn) ([][]uint8, map[string]uint64) {
	set := testSet(t)
	dresses, others := confident(t, conn, set, 20, 40)
	order := append(append(append([]int{}, others[:20]...), dresses...), others[20:]...)
	pix := make([][]uint8, len(order))
	truth := map[string]uint64{}
	for i, item := range order {
		pix[i] = set.Images[item]
		truth[fashionmnist.Labels[set.Labels[item]]]++
	}
	return pix, truth
}

// TestDressVideoFiresOneAlert streams the composed video twice, as PNG frames and as a
// lossless video file decoded by ffmpeg: the Dress rule fires exactly once, on the
// third Dress frame (frame 22), on the stream and on WatchAlerts, and the tallies
// equal the ground truth.
func TestDressVideoFiresOneAlert(t *testing.T) {
	_, conn := startApp(t)
	pix, truth := dressVideo(t, conn)
	sources := []struct {
		name   string
		images func(t *testing.T) []*pb.Image
	}{
		{"png frames", func(t *testing.T) []*pb.Image {
			out := make([]*pb.Image, len(pix))
			for i, p := range pix {
				out[i] = encoded(greyPNG(t, p))
			}
			return out
		}},
		{"video through ffmpeg", func(t *testing.T) []*pb.Image { return throughVideo(t, pix) }},
	}
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			camera := "door-" + strings.ReplaceAll(src.name, " ", "-")
			watched := watch(t, conn, &pb.WatchAlertsRequest{CameraIds: []string{camera}})
			start := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
			cfg := &pb.ClassifyStreamConfig{TopK: proto.Int32(3), Options: &pb.StreamOptions{
				CameraId: camera, SummaryInterval: durationpb.New(time.Hour),
				AlertRules: []*pb.AlertRule{{Name: "dress", Categories: []string{"Dress"}, MinScore: 0.6,
					MinConsecutiveFrames: 3, Cooldown: durationpb.New(0)}},
			}}
			run := classifyStream(ctxFor(t, time.Minute), conn, cfg, numbered(src.images(t), start), false)
			if run.err != nil || len(run.results) != len(pix) {
				t.Fatalf("stream: %v after %d results, want %d results", run.err, len(run.results), len(pix))
			}
			if len(run.alerts) != 1 {
				t.Fatalf("got %d alerts on the stream, want 1: %v", len(run.alerts), run.alerts)
			}
			a := run.alerts[0]
			if a.FrameId != 22 || a.Label != "Dress" || a.Rule != "dress" || a.CameraId != camera || a.Score < 0.6 ||
				!a.CaptureTime.AsTime().Equal(start.Add(2200*time.Millisecond)) {
				t.Fatalf("got alert %v, want rule dress on frame 22 of %s at +2.2s", a, camera)
			}
			if got := watched(2 * time.Second); len(got) != 1 || !proto.Equal(got[0], a) {
				t.Fatalf("WatchAlerts got %v, want exactly the stream's alert %v", got, a)
			}
			sum := run.summaries[len(run.summaries)-1]
			if got := counts(sum); sum.Frames != uint64(len(pix)) || !maps.Equal(got, truth) {
				t.Fatalf("got tallies %v over %d frames, want the ground truth %v over %d", got, sum.Frames, truth, len(pix))
			}
			if !sum.WindowStart.AsTime().Equal(start) || !sum.WindowEnd.AsTime().Equal(start.Add(5900*time.Millisecond)) {
				t.Fatalf("got window %v..%v, want the video's capture times", sum.WindowStart.AsTime(), sum.WindowEnd.AsTime())
			}
			t.Logf("one alert on frame %d (score %.3f); tallies %v", a.FrameId, a.Score, sortedCounts(sum))
		})
	}
}

// throughVideo writes the frames into a lossless video with ffmpeg and reads them back
// as raw RGB frames through framesource, checking the pixels survived.
func throughVideo(t *testing.T, pix [][]uint8) []*pb.Image {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		testenv.Missing(t, "ffmpeg", "run `make setup`, which installs Debian's ffmpeg package")
	}
	frames := make([]image.Image, len(pix))
	for i, p := range pix {
		frames[i] = &image.Gray{Pix: p, Stride: fashionmnist.Side, Rect: image.Rect(0, 0, fashionmnist.Side, fashionmnist.Side)}
	}
	path := filepath.Join(t.TempDir(), "dress.mkv")
	if err := framesource.WriteVideo(context.Background(), path, 10, frames, framesource.Options{}); err != nil {
		t.Fatal(err)
	}
	src, err := framesource.Open(context.Background(), path, framesource.Options{Raw: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out []*pb.Image
	for img := range src.Images(context.Background(), 0) {
		out = append(out, img)
	}
	if src.Err() != nil || len(out) != len(pix) {
		t.Fatalf("read %d frames back (%v), want %d", len(out), src.Err(), len(pix))
	}
	for i, img := range out {
		rgb := img.GetRaw().GetRgb()
		for j, v := range pix[i] {
			if rgb[j*3] != v || rgb[j*3+1] != v || rgb[j*3+2] != v {
				t.Fatalf("frame %d pixel %d: got %v, want grey %d", i, j, rgb[j*3:j*3+3], v)
			}
		}
	}
	return out
}

// watch subscribes to alerts and returns a function that collects what arrives
// within d of being called, then cancels the watch.
func watch(t *testing.T, conn *grpc.ClientConn, req *pb.WatchAlertsRequest) func(d time.Duration) []*pb.Alert {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := pb.NewAlertServiceClient(conn).WatchAlerts(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Header(); err != nil { // the server is subscribed once it sends headers
		t.Fatal(err)
	}
	got := make(chan *pb.Alert, 16)
	go func() {
		defer close(got)
		for {
			m, err := w.Recv()
			if err != nil {
				return
			}
			got <- m.Alert
		}
	}()
	return func(d time.Duration) []*pb.Alert {
		var out []*pb.Alert
		deadline := time.After(d)
		for {
			select {
			case a := <-got:
				out = append(out, a)
			case <-deadline:
				cancel()
				for range got {
				}
				return out
			}
		}
	}
}

func sortedCounts(s *pb.TallySummary) string {
	var parts []string
	for _, c := range s.Counts {
		parts = append(parts, fmt.Sprintf("%s=%d", c.Label, c.Count))
	}
	return strings.Join(parts, " ")
}

// TestPythonStreamExample runs examples/python/stream_frames.py on a folder of frames
// (two coats, four dresses, a coat) with a Dress rule.
func TestPythonStreamExample(t *testing.T) {
	addr, conn := startApp(t)
	py := testenv.Python(t)
	set := testSet(t)
	dresses, others := confident(t, conn, set, 4, 3)
	dir := t.TempDir()
	for i, item := range []int{others[0], others[1], dresses[0], dresses[1], dresses[2], dresses[3], others[2]} {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("frame-%02d.png", i)), greyPNG(t, set.Images[item]), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "frame-07.png"), []byte("not a png"), 0o644)
	cmd := exec.CommandContext(ctxFor(t, 2*time.Minute), py, filepath.Join(testenv.Root(t), "examples", "python", "stream_frames.py"),
		"--addr", addr, "--camera", "py-door", "--watch", "Dress", "--min-frames", "3", dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{"frame 1 ", "frame 2 ", "frame 3 Dress", "frame 4 Dress", "frame 5 Dress", "alert watch Dress",
		"frame 6 Dress", "frame 7 ", "frame 8 error INVALID_ARGUMENT", "summary py-door 7 frames: Dress=4"}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Fatalf("line %d: got %q, want it to start with %q\n%s", i+1, lines[i], w, out)
		}
	}
	if !strings.HasSuffix(lines[5], "on py-door frame 5") {
		t.Fatalf("got %q, want the alert on frame 5", lines[5])
	}
}
