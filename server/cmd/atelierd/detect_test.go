package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/atelier-vision/atelier/bench/detecteval"
	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// startDetect serves the built detector and classifier, or fails/skips as testenv decides.
func startDetect(t testing.TB) pb.DetectServiceClient {
	t.Helper()
	testenv.ModelDir(t, "detector", "classifier")
	_, conn := startApp(t)
	return pb.NewDetectServiceClient(conn)
}

// heldOut writes n held-out scenes (of one size if size is "WxH") with the project's
// Python and returns their ground truth.
func heldOut(t testing.TB, n int, size string) *detecteval.Truth {
	t.Helper()
	testSet(t) // Fashion-MNIST must be there
	dir := t.TempDir()
	if err := detecteval.WriteHeldOut(testenv.Python(t), filepath.Join(testenv.Root(t), "savedmodels"), dir, n, size); err != nil {
		t.Fatal(err)
	}
	truth, err := detecteval.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return truth
}

func readScene(t testing.TB, truth *detecteval.Truth, i int) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(truth.Dir, truth.Scenes[i].File))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestDetectHeldOut sends 200 held-out scenes (test-split garments the detector never
// saw) through gRPC and checks mAP@0.5, recall and the classifier's accuracy on the
// crops of the garments found.
func TestDetectHeldOut(t *testing.T) {
	client := startDetect(t)
	truth := heldOut(t, 200, "")
	report, _, err := detecteval.Run(ctxFor(t, 10*time.Minute), client, truth, detecteval.DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("held-out scenes through gRPC: %s", report)
	if report.Recall < 0.8 || report.MAP < 0.7 || report.FineAccuracy < 0.8 {
		t.Fatalf("got recall %.4f, mAP@0.5 %.4f, fine accuracy %.4f; want at least 0.8, 0.7 and 0.8",
			report.Recall, report.MAP, report.FineAccuracy)
	}
}

// TestDetectHeldOut640x480 sends 100 held-out camera-sized scenes, whose garments are
// the same 40..96 pixels as in the training scenes and so shrink to 10..24 pixels when
// the whole 640x480 picture is fitted into the detector's 160x160 input. With tiling
// (the default, auto) the detector also searches six overlapping 320x320 tiles.
func TestDetectHeldOut640x480(t *testing.T) {
	client := startDetect(t)
	truth := heldOut(t, 100, "640x480")
	ctx := ctxFor(t, 10*time.Minute)
	reports := map[pb.Tiling]detecteval.Report{}
	for _, tiling := range []pb.Tiling{pb.Tiling_TILING_OFF, pb.Tiling_TILING_UNSPECIFIED} {
		opt := detecteval.DefaultOptions
		opt.Tiling = tiling
		report, _, err := detecteval.Run(ctx, client, truth, opt)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("640x480 held-out scenes, tiling %s: %s", tiling, report)
		reports[tiling] = report
	}
	tiled, whole := reports[pb.Tiling_TILING_UNSPECIFIED], reports[pb.Tiling_TILING_OFF]
	if tiled.MAP < 0.85 || tiled.Recall < 0.85 || tiled.FineAccuracy < 0.8 {
		t.Fatalf("tiled: got mAP@0.5 %.4f, recall %.4f, fine accuracy %.4f; want at least 0.85, 0.85 and 0.8",
			tiled.MAP, tiled.Recall, tiled.FineAccuracy)
	}
	if whole.MAP > tiled.MAP-0.1 {
		t.Fatalf("the whole picture alone scores mAP@0.5 %.4f, tiled %.4f: tiling should matter here", whole.MAP, tiled.MAP)
	}
}

// TestDetectAnswer checks one scene's answer and the request options.
func TestDetectAnswer(t *testing.T) {
	client := startDetect(t)
	truth := heldOut(t, 1, "")
	scene := truth.Scenes[0]
	img := encoded(readScene(t, truth, 0))
	resp, err := client.Detect(ctxFor(t, time.Minute), &pb.DetectRequest{Image: img})
	if err != nil {
		t.Fatal(err)
	}
	if resp.ImageWidth != uint32(scene.Width) || resp.ImageHeight != uint32(scene.Height) {
		t.Fatalf("got size %dx%d, want %dx%d", resp.ImageWidth, resp.ImageHeight, scene.Width, scene.Height)
	}
	if resp.Detector.GetName() != "detector" || resp.Classifier.GetName() != "classifier" {
		t.Fatalf("got models %v and %v, want detector and classifier", resp.Detector, resp.Classifier)
	}
	if len(resp.Detections) == 0 || len(resp.Detections) > 20 {
		t.Fatalf("got %d detections, want 1..20 (the default cap)", len(resp.Detections))
	}
	for i, d := range resp.Detections {
		b := d.Box
		switch {
		case d.Score < 0.5 || (i > 0 && d.Score > resp.Detections[i-1].Score):
			t.Fatalf("detection %d: score %v, want >= 0.5 (the default) and best first", i, d.Score)
		case b.XMin < 0 || b.YMin < 0 || b.XMax > float32(scene.Width) || b.YMax > float32(scene.Height) || b.XMin >= b.XMax || b.YMin >= b.YMax:
			t.Fatalf("detection %d: box %v is not inside the %dx%d image", i, b, scene.Width, scene.Height)
		case !slices.Contains(truth.Types, d.GarmentType):
			t.Fatalf("detection %d: garment type %q, want one of %v", i, d.GarmentType, truth.Types)
		case len(d.Classification.GetPredictions()) != 1:
			t.Fatalf("detection %d: got %d predictions, want the default 1", i, len(d.Classification.GetPredictions()))
		}
	}

	skip, err := client.Detect(ctxFor(t, time.Minute), &pb.DetectRequest{Image: img, SkipClassification: true})
	if err != nil {
		t.Fatal(err)
	}
	if skip.Classifier != nil || len(skip.Detections) != len(resp.Detections) || skip.Detections[0].Classification != nil {
		t.Fatalf("skip_classification: got classifier %v and %d detections (first classified: %v), want none, %d, no",
			skip.Classifier, len(skip.Detections), skip.Detections[0].Classification != nil, len(resp.Detections))
	}
	opts, err := client.Detect(ctxFor(t, time.Minute), &pb.DetectRequest{Image: img, MaxDetections: proto.Int32(2),
		MinScore: proto.Float32(0), TopK: proto.Int32(3)})
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.Detections) != 2 || len(opts.Detections[0].Classification.GetPredictions()) != 3 {
		t.Fatalf("max_detections 2, top_k 3: got %d detections with %d predictions, want 2 with 3",
			len(opts.Detections), len(opts.Detections[0].Classification.GetPredictions()))
	}

	// The same picture as a raw RGB frame gets the same answer.
	decoded, err := png.Decode(bytes.NewReader(readScene(t, truth, 0)))
	if err != nil {
		t.Fatal(err)
	}
	rgb := make([]byte, 0, scene.Width*scene.Height*3)
	for y := range scene.Height {
		for x := range scene.Width {
			r, g, b, _ := decoded.At(x, y).RGBA()
			rgb = append(rgb, byte(r>>8), byte(g>>8), byte(b>>8))
		}
	}
	raw, err := client.Detect(ctxFor(t, time.Minute), &pb.DetectRequest{Image: &pb.Image{Data: &pb.Image_Raw{
		Raw: &pb.RawImage{Rgb: rgb, Width: uint32(scene.Width), Height: uint32(scene.Height)}}}})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(raw, resp) {
		t.Fatalf("raw frame: got %v, want the PNG's answer %v", raw, resp)
	}
}

// TestDetectNoGarment checks that pictures without garments get an empty list.
func TestDetectNoGarment(t *testing.T) {
	client := startDetect(t)
	black := image.NewGray(image.Rect(0, 0, 640, 480))
	gradient := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for y := range 240 {
		for x := range 320 {
			gradient.Set(x, y, color.RGBA{uint8(x / 8), uint8(20 + y/8), 40, 255})
		}
	}
	for name, im := range map[string]image.Image{"black": black, "gradient": gradient} {
		var buf bytes.Buffer
		png.Encode(&buf, im)
		resp, err := client.Detect(ctxFor(t, time.Minute), &pb.DetectRequest{Image: encoded(buf.Bytes())})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(resp.Detections) != 0 || resp.ImageWidth != uint32(im.Bounds().Dx()) {
			t.Fatalf("%s: got %d detections for a %d-wide image, want none", name, len(resp.Detections), resp.ImageWidth)
		}
	}
}

// TestDetectBadInput sends every kind of bad request and checks the code and the
// message, and that a good request still succeeds after each.
func TestDetectBadInput(t *testing.T) {
	client := startDetect(t)
	good := encoded(greyPNG(t, testSet(t).Images[0]))
	var truncated bytes.Buffer
	png.Encode(&truncated, image.NewGray(image.Rect(0, 0, 64, 64)))
	tests := []struct {
		name    string
		req     *pb.DetectRequest
		code    codes.Code
		message string
	}{
		{"no image", &pb.DetectRequest{}, codes.InvalidArgument, "image is required"},
		{"empty image", &pb.DetectRequest{Image: &pb.Image{}}, codes.InvalidArgument, "set image.encoded"},
		{"empty bytes", &pb.DetectRequest{Image: encoded(nil)}, codes.InvalidArgument, "no bytes"},
		{"truncated png", &pb.DetectRequest{Image: encoded(truncated.Bytes()[:truncated.Len()/2])}, codes.InvalidArgument, "truncated"},
		{"not an image", &pb.DetectRequest{Image: encoded([]byte("not a picture"))}, codes.InvalidArgument, "not a readable JPEG or PNG"},
		{"decompression bomb", &pb.DetectRequest{Image: encoded(pngBomb(t, 60000, 60000))}, codes.InvalidArgument, "exceeds the limit"},
		{"raw size mismatch", &pb.DetectRequest{Image: &pb.Image{Data: &pb.Image_Raw{Raw: &pb.RawImage{Rgb: make([]byte, 10), Width: 28, Height: 28}}}}, codes.InvalidArgument, "needs 2352 bytes"},
		{"min_score negative", &pb.DetectRequest{Image: good, MinScore: proto.Float32(-0.1)}, codes.InvalidArgument, "min_score -0.1 is out of range [0, 1]"},
		{"min_score over 1", &pb.DetectRequest{Image: good, MinScore: proto.Float32(1.5)}, codes.InvalidArgument, "min_score 1.5"},
		{"min_score NaN", &pb.DetectRequest{Image: good, MinScore: proto.Float32(float32(math.NaN()))}, codes.InvalidArgument, "min_score NaN"},
		{"unknown tiling", &pb.DetectRequest{Image: good, Tiling: pb.Tiling(9)}, codes.InvalidArgument, "unknown tiling 9"},
		{"max_detections zero", &pb.DetectRequest{Image: good, MaxDetections: proto.Int32(0)}, codes.InvalidArgument, "max_detections 0 is out of range 1..100"},
		{"max_detections negative", &pb.DetectRequest{Image: good, MaxDetections: proto.Int32(-5)}, codes.InvalidArgument, "max_detections -5"},
		{"max_detections over 100", &pb.DetectRequest{Image: good, MaxDetections: proto.Int32(101)}, codes.InvalidArgument, "max_detections 101 is out of range 1..100"},
		{"top_k zero", &pb.DetectRequest{Image: good, TopK: proto.Int32(0)}, codes.InvalidArgument, "top_k 0"},
		{"top_k absurd", &pb.DetectRequest{Image: good, TopK: proto.Int32(1 << 30)}, codes.InvalidArgument, "out of range"},
		{"unknown detector", &pb.DetectRequest{Image: good, Model: &pb.ModelSpec{Name: "no-such-model"}}, codes.NotFound, `no model named "no-such-model"`},
		{"unknown detector version", &pb.DetectRequest{Image: good, Model: &pb.ModelSpec{Name: "detector", Version: 99}}, codes.NotFound, "no version 99"},
		{"classifier as detector", &pb.DetectRequest{Image: good, Model: &pb.ModelSpec{Name: "classifier"}}, codes.FailedPrecondition, "is a classifier, not a detector"},
		{"detector as classifier", &pb.DetectRequest{Image: good, Classifier: &pb.ModelSpec{Name: "detector"}}, codes.FailedPrecondition, "is a detector, not a classifier"},
		{"classifier version and label", &pb.DetectRequest{Image: good, Classifier: &pb.ModelSpec{Version: 1, VersionLabel: "stable"}},
			codes.InvalidArgument, "set classifier.version or classifier.version_label, not both"},
		{"negative detector version", &pb.DetectRequest{Image: good, Model: &pb.ModelSpec{Version: -1}}, codes.InvalidArgument, "model.version -1 is negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Detect(ctxFor(t, time.Minute), tc.req)
			st := status.Convert(err)
			if st.Code() != tc.code || !strings.Contains(st.Message(), tc.message) {
				t.Fatalf("got %v %q, want %v containing %q", st.Code(), st.Message(), tc.code, tc.message)
			}
			if _, err := client.Detect(ctxFor(t, time.Minute), &pb.DetectRequest{Image: good}); err != nil {
				t.Fatalf("a good request after the bad one: %v", err)
			}
		})
	}
}

// BenchmarkDetect640x480 measures one Detect call on a 640x480 held-out scene through
// gRPC on loopback: PNG decode, detector (on the picture and its six tiles, or on the
// picture alone when untiled), and (unless skipped) the crops and one classifier batch.
//
//	go test -run '^$' -bench Detect640x480 -benchtime 100x ./server/cmd/atelierd
func BenchmarkDetect640x480(b *testing.B) {
	client := startDetect(b)
	truth := heldOut(b, 1, "640x480")
	image := encoded(readScene(b, truth, 0))
	ctx := ctxFor(b, 10*time.Minute)
	for _, tc := range []struct {
		name   string
		skip   bool
		tiling pb.Tiling
	}{
		{"classified", false, pb.Tiling_TILING_AUTO},
		{"skip_classification", true, pb.Tiling_TILING_AUTO},
		{"classified_untiled", false, pb.Tiling_TILING_OFF},
		{"skip_classification_untiled", true, pb.Tiling_TILING_OFF},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := &pb.DetectRequest{Image: image, SkipClassification: tc.skip, Tiling: tc.tiling}
			resp, err := client.Detect(ctx, req, grpc.WaitForReady(true))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := client.Detect(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(resp.Detections)), "garments/op")
		})
	}
}
