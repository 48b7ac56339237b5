package detect

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/prep"
	"github.com/atelier-vision/atelier/internal/tensor"
)

// The detector's output keys (the TF Object Detection API convention).
const (
	outBoxes   = "detection_boxes"
	outScores  = "detection_scores"
	outClasses = "detection_classes"
	outNum     = "num_detections"
)

var (
	fakeTypes  = []string{"top", "bottom", "footwear"}
	fakeLabels = []string{"T-shirt/top", "Trouser", "Sneaker"}
)

// fakeDetector answers every image with the same rows (ymin, xmin, ymax, xmax, score,
// class), padded to K=4 as a TF Object Detection API model pads them.
type fakeDetector struct{ rows [][6]float32 }

func (f *fakeDetector) Run(_ context.Context, sig string, in map[string]*tensor.Tensor, outs []string) (map[string]*tensor.Tensor, error) {
	im := in["images"]
	if sig != models.ServingSignature || im == nil || !slices.Equal(im.Shape[1:], []int64{8, 8, 1}) || len(outs) != 4 {
		return nil, fmt.Errorf("fake detector: unexpected call %s %v %v", sig, im, outs)
	}
	n, k := int(im.Shape[0]), 4
	boxes, scores, classes := make([]float32, n*k*4), make([]float32, n*k), make([]float32, n*k)
	num := make([]float32, n)
	for i := range n {
		num[i] = float32(len(f.rows))
		for j, r := range f.rows {
			copy(boxes[(i*k+j)*4:], r[:4])
			scores[i*k+j], classes[i*k+j] = r[4], r[5]
		}
	}
	return detectorOutputs(n, k, boxes, scores, classes, num), nil
}

func (f *fakeDetector) Close() error { return nil }

// detectorOutputs wraps n images' padded detections (k each) as a detector's outputs.
func detectorOutputs(n, k int, boxes, scores, classes, num []float32) map[string]*tensor.Tensor {
	b, _ := tensor.NewFloat32([]int64{int64(n), int64(k), 4}, boxes)
	s, _ := tensor.NewFloat32([]int64{int64(n), int64(k)}, scores)
	c, _ := tensor.NewFloat32([]int64{int64(n), int64(k)}, classes)
	m, _ := tensor.NewFloat32([]int64{int64(n)}, num)
	return map[string]*tensor.Tensor{outBoxes: b, outScores: s, outClasses: c, outNum: m}
}

// fakeClassifier scores a crop by its mean brightness: dark crops are class 0, bright
// ones class 2. It records the size of every batch it runs.
type fakeClassifier struct{ batches []int }

func (f *fakeClassifier) Run(_ context.Context, _ string, in map[string]*tensor.Tensor, _ []string) (map[string]*tensor.Tensor, error) {
	im := in["images"]
	n := int(im.Shape[0])
	f.batches = append(f.batches, n)
	probs := make([]float32, n*3)
	for i := range n {
		sum := 0
		for _, v := range im.Uint8[i*16 : (i+1)*16] {
			sum += int(v)
		}
		probs[i*3+min(sum/16/90, 2)] = 1
	}
	out, err := tensor.NewFloat32([]int64{int64(n), 3}, probs)
	return map[string]*tensor.Tensor{"probabilities": out}, err
}

func (f *fakeClassifier) Close() error { return nil }

// nearest is a nearest-neighbour stand-in for TensorFlow's resize.
type nearest struct{}

func (nearest) Resize(pix []uint8, h, w, c, outH, outW int) ([]uint8, error) {
	out := make([]uint8, outH*outW*c)
	for y := range outH {
		for x := range outW {
			copy(out[(y*outW+x)*c:(y*outW+x+1)*c], pix[((y*h/outH)*w+x*w/outW)*c:])
		}
	}
	return out, nil
}

// fakeSetup returns a Detector over a fake "detector" (8x8 grey input, the given rows)
// and a fake "classifier" (4x4 grey input).
func fakeSetup(t *testing.T, rows [][6]float32) (*Detector, *fakeClassifier) {
	t.Helper()
	return fakeSetupWith(t, &fakeDetector{rows: rows})
}

// fakeSetupWith is fakeSetup with det as the detector's engine.
func fakeSetupWith(t *testing.T, det tensor.Engine) (*Detector, *fakeClassifier) {
	t.Helper()
	cls := &fakeClassifier{}
	info := func(key string, dt tensor.DType, shape ...int64) tensor.Info {
		return tensor.Info{Key: key, DType: dt, Shape: shape}
	}
	cm, err := models.NewModel(models.Spec{Name: "classifier", Version: 1}, "", cls, []tensor.Signature{{Name: models.ServingSignature,
		Inputs:  []tensor.Info{info("images", tensor.Uint8, -1, 4, 4, 1)},
		Outputs: []tensor.Info{info("probabilities", tensor.Float32, -1, 3)}}}, fakeLabels)
	if err != nil {
		t.Fatal(err)
	}
	dm, err := models.NewModel(models.Spec{Name: "detector", Version: 1}, "", det, []tensor.Signature{{Name: models.ServingSignature,
		Inputs: []tensor.Info{info("images", tensor.Uint8, -1, 8, 8, 1)},
		Outputs: []tensor.Info{info(outBoxes, tensor.Float32, -1, 4, 4), info(outClasses, tensor.Float32, -1, 4),
			info(outScores, tensor.Float32, -1, 4), info(outNum, tensor.Float32, -1)}}}, fakeTypes)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := models.NewRepository(cm, dm)
	if err != nil {
		t.Fatal(err)
	}
	return &Detector{Repo: repo, Prep: &prep.Preparer{Limits: imageio.DefaultLimits, Resizer: nearest{}}}, cls
}

// scene is a 40x20 RGB frame: black, with a bright patch at x 24..36, y 2..18.
func scene() imageio.Source { return brightPatch(40, 20, 24, 2, 36, 18) }

// brightPatch is a black w x h RGB frame with the pixels [x0,x1) x [y0,y1) at 250.
func brightPatch(w, h, x0, y0, x1, y1 int) imageio.Source {
	rgb := make([]uint8, w*h*3)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			i := (y*w + x) * 3
			rgb[i], rgb[i+1], rgb[i+2] = 250, 250, 250
		}
	}
	return imageio.Source{Frame: &imageio.Frame{RGB: rgb, Width: w, Height: h}}
}

// rows: a bright box on the right (0.9), a dark one on the left (0.6), a weak one (0.3).
var rows = [][6]float32{
	{0.1, 0.6, 0.9, 0.9, 0.9, 2},
	{0, 0, 1, 0.25, 0.6, 1},
	{0.2, 0.2, 0.4, 0.4, 0.3, 0},
}

// request returns a request for scene() with the documented defaults, changed by mod.
// The fake detector's input is tiny, so the scene would be tiled; these tests look at
// the whole picture only (tile_test.go covers tiling).
func request(mod func(*Request)) Request {
	r := Defaults
	r.Image = scene()
	r.Tiling = TilingOff
	mod(&r)
	return r
}

func TestDetectClassifiesCropsInOneBatch(t *testing.T) {
	d, cls := fakeSetup(t, rows)
	res, err := d.Detect(context.Background(), request(func(r *Request) {}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Width != 40 || res.Height != 20 || res.Detector.Name != "detector" || res.Classifier.Name != "classifier" {
		t.Fatalf("got %dx%d from %v and %v, want 40x20 from detector and classifier", res.Width, res.Height, res.Detector, res.Classifier)
	}
	if len(res.Detections) != 2 {
		t.Fatalf("got %d detections, want the 2 scoring at least 0.5", len(res.Detections))
	}
	if !slices.Equal(cls.batches, []int{2}) {
		t.Fatalf("got classifier batches %v, want one batch of 2 crops", cls.batches)
	}
	want := []struct {
		box        Box
		typ, label string
	}{
		{Box{XMin: 24, YMin: 2, XMax: 36, YMax: 18}, "footwear", "Sneaker"},
		{Box{XMin: 0, YMin: 0, XMax: 10, YMax: 20}, "bottom", "T-shirt/top"},
	}
	for i, w := range want {
		got := res.Detections[i]
		if !near(got.Box, w.box) || got.Type != w.typ || len(got.Classification) != 1 || got.Classification[0].Label != w.label {
			t.Fatalf("detection %d: got %+v, want box %+v type %s label %s", i, got, w.box, w.typ, w.label)
		}
	}
}

func TestDetectOptions(t *testing.T) {
	tests := []struct {
		name       string
		req        Request
		n, batches int
	}{
		{"skip classification", request(func(r *Request) { r.SkipClassification = true }), 2, 0},
		{"max detections", request(func(r *Request) { r.MinScore, r.MaxDetections = 0, 1 }), 1, 1},
		{"min score zero", request(func(r *Request) { r.MinScore = 0 }), 3, 1},
		{"nothing good enough", request(func(r *Request) { r.MinScore = 0.95 }), 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, cls := fakeSetup(t, rows)
			res, err := d.Detect(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Detections) != tc.n || len(cls.batches) != tc.batches {
				t.Fatalf("got %d detections and %d classifier runs, want %d and %d", len(res.Detections), len(cls.batches), tc.n, tc.batches)
			}
			if res.Detections == nil {
				t.Fatal("got nil detections, want an empty list")
			}
			for _, det := range res.Detections {
				if (det.Classification == nil) != tc.req.SkipClassification {
					t.Fatalf("got classification %v with skip %v", det.Classification, tc.req.SkipClassification)
				}
			}
			if tc.batches == 0 && res.Classifier != (models.Spec{}) {
				t.Fatalf("got classifier %v, want none when no crop was classified", res.Classifier)
			}
		})
	}
}

func TestDetectErrors(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		want error
	}{
		{"min score NaN", request(func(r *Request) { r.MinScore = float32(math.NaN()) }), errkind.Invalid},
		{"min score negative", request(func(r *Request) { r.MinScore = -0.1 }), errkind.Invalid},
		{"min score over 1", request(func(r *Request) { r.MinScore = 1.5 }), errkind.Invalid},
		{"max detections 0", request(func(r *Request) { r.MaxDetections = 0 }), errkind.Invalid},
		{"max detections over limit", request(func(r *Request) { r.MaxDetections = MaxDetections + 1 }), errkind.Invalid},
		{"top k 0", request(func(r *Request) { r.TopK = 0 }), errkind.Invalid},
		{"negative top k", request(func(r *Request) { r.TopK = -1 }), errkind.Invalid},
		{"unknown tiling", request(func(r *Request) { r.Tiling = TilingOn + 1 }), errkind.Invalid},
		{"negative tiling", request(func(r *Request) { r.Tiling = -1 }), errkind.Invalid},
		{"unknown detector", request(func(r *Request) { r.Model = models.Spec{Name: "nope"} }), models.ErrNotFound},
		{"classifier as detector", request(func(r *Request) { r.Model = models.Spec{Name: "classifier"} }), models.ErrWrongRole},
		{"detector as classifier", request(func(r *Request) { r.Classifier = models.Spec{Name: "detector"} }), models.ErrWrongRole},
		{"unknown classifier version", request(func(r *Request) { r.Classifier = models.Spec{Name: "classifier", Version: 9} }), models.ErrNotFound},
		{"no image", request(func(r *Request) { r.Image = imageio.Source{} }), imageio.ErrInvalidImage},
		{"negative detector version", request(func(r *Request) { r.Model = models.Spec{Name: "detector", Version: -1} }), models.ErrInvalidSpec},
		{"classifier version and label", request(func(r *Request) { r.Classifier = models.Spec{Version: 1, Label: "stable"} }), models.ErrInvalidSpec},
	}
	d, _ := fakeSetup(t, rows)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.Detect(context.Background(), tc.req)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCropLetterboxes(t *testing.T) {
	// A 4x3 grey image with pixel values 1..12.
	im := imageio.Image{Width: 4, Height: 3, Channels: 1, Pix: []uint8{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}}
	tests := []struct {
		name string
		box  Box
		side int
		pix  []uint8
	}{
		{"wide box gets black rows", Box{XMin: 1, YMin: 1, XMax: 4, YMax: 2}, 3, []uint8{0, 0, 0, 6, 7, 8, 0, 0, 0}},
		{"tall box gets black columns", Box{XMin: 0.5, YMin: 0, XMax: 1.5, YMax: 2}, 2, []uint8{1, 2, 5, 6}},
		{"box past the edge is clamped", Box{XMin: 3, YMin: -5, XMax: 9, YMax: 1}, 1, []uint8{4}},
		{"empty box is one black pixel", Box{XMin: 2, YMin: 2, XMax: 2, YMax: 2}, 1, []uint8{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Crop(im, tc.box, false)
			if got.Width != tc.side || got.Height != tc.side || !slices.Equal(got.Pix, tc.pix) {
				t.Fatalf("got %dx%d %v, want %dx%d %v", got.Width, got.Height, got.Pix, tc.side, tc.side, tc.pix)
			}
		})
	}
}

func TestCropTakesTheBackgroundOut(t *testing.T) {
	// A 12x12 RGB image of background (40, 20, 60) holding a 2x2 garment of (240, 120, 60)
	// at x 5..7, y 5..7, and one bright pixel of clutter in the ring.
	im := imageio.Image{Width: 12, Height: 12, Channels: 3, Pix: make([]uint8, 12*12*3)}
	set := func(x, y int, r, g, b uint8) { copy(im.Pix[(y*12+x)*3:], []uint8{r, g, b}) }
	for y := range 12 {
		for x := range 12 {
			set(x, y, 40, 20, 60)
		}
	}
	for y := 5; y < 7; y++ {
		for x := 5; x < 7; x++ {
			set(x, y, 240, 120, 60)
		}
	}
	set(3, 3, 255, 255, 255)
	got := Crop(im, Box{XMin: 5, YMin: 5, XMax: 7, YMax: 7}, true)
	// (240-40)*255/215 = 237.2, (120-20)*255/235 = 108.5, 60-60 = 0.
	want := []uint8{237, 109, 0}
	for i := range 4 {
		if !slices.Equal(got.Pix[i*3:i*3+3], want) {
			t.Fatalf("pixel %d: got %v, want %v (background out, levels stretched)", i, got.Pix[i*3:i*3+3], want)
		}
	}
	if got := Crop(im, Box{XMin: 0, YMin: 0, XMax: 12, YMax: 12}, true); got.Pix[0] != 40 {
		t.Fatalf("a box covering the whole image: got %d, want 40 (no ring, nothing taken out)", got.Pix[0])
	}
}

func TestScaleClamps(t *testing.T) {
	got := Scale(models.NormBox{YMin: -0.1, XMin: 0.5, YMax: 1.2, XMax: 0.75}, 200, 100)
	if want := (Box{XMin: 100, YMin: 0, XMax: 150, YMax: 100}); !near(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func near(a, b Box) bool {
	d := func(x, y float32) bool { return math.Abs(float64(x-y)) < 1e-4 }
	return d(a.XMin, b.XMin) && d(a.YMin, b.YMin) && d(a.XMax, b.XMax) && d(a.YMax, b.YMax)
}
