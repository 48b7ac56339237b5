package detect

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/tensor"
)

func TestTilesCoverThePictureWithOverlap(t *testing.T) {
	tests := []struct {
		name                    string
		width, height, inW, inH int
		mode                    Tiling
		want                    int // tiles; 0 means the whole picture only
	}{
		{"camera frame, auto", 640, 480, 160, 160, TilingAuto, 6},
		{"camera frame, off", 640, 480, 160, 160, TilingOff, 0},
		{"training-size scene, auto", 400, 336, 160, 160, TilingAuto, 0},
		{"training-size scene, on", 400, 336, 160, 160, TilingOn, 4},
		{"one tile's worth, on", 320, 320, 160, 160, TilingOn, 0},
		{"wide strip, auto", 1200, 100, 160, 160, TilingAuto, 5},
		{"4k frame, capped", 3840, 2160, 160, 160, TilingAuto, MaxTiles},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tiles := Tiles(tc.width, tc.height, tc.inW, tc.inH, tc.mode)
			if tc.want == MaxTiles {
				if len(tiles) > MaxTiles || len(tiles) < MaxTiles/2 {
					t.Fatalf("got %d tiles, want at most %d and not far fewer", len(tiles), MaxTiles)
				}
			} else if len(tiles) != tc.want {
				t.Fatalf("got %d tiles %v, want %d", len(tiles), tiles, tc.want)
			}
			if len(tiles) == 0 {
				return
			}
			checkCover(t, tiles, tc.width, tc.height)
		})
	}
}

// checkCover checks that the tiles lie inside the picture, cover every pixel, and that
// every square of TileOverlap of a tile's side lies whole inside some tile.
func checkCover(t *testing.T, tiles []Rect, width, height int) {
	t.Helper()
	for _, r := range tiles {
		if r.X < 0 || r.Y < 0 || r.X+r.W > width || r.Y+r.H > height || r.W < 1 || r.H < 1 {
			t.Fatalf("tile %+v is not inside the %dx%d picture", r, width, height)
		}
	}
	side := int(TileOverlap * float64(min(tiles[0].W, tiles[0].H)))
	for y := 0; y+side <= height; y += max(side/3, 1) {
		for x := 0; x+side <= width; x += max(side/3, 1) {
			inside := slices.ContainsFunc(tiles, func(r Rect) bool {
				return x >= r.X && y >= r.Y && x+side <= r.X+r.W && y+side <= r.Y+r.H
			})
			if !inside {
				t.Fatalf("a %dx%d garment at (%d, %d) lies whole in no tile of %v", side, side, x, y, tiles)
			}
		}
	}
}

func TestCutOffOnlyAtSharedEdges(t *testing.T) {
	tile := Rect{X: 100, Y: 0, W: 200, H: 200} // picture 300x400: right edge is the picture's
	tests := []struct {
		box  Box
		want bool
	}{
		{Box{XMin: 150, YMin: 50, XMax: 250, YMax: 150}, false},
		{Box{XMin: 100, YMin: 50, XMax: 150, YMax: 150}, true},  // left edge is shared
		{Box{XMin: 250, YMin: 50, XMax: 300, YMax: 150}, false}, // right edge is the picture's
		{Box{XMin: 150, YMin: 0, XMax: 200, YMax: 50}, false},   // top edge is the picture's
		{Box{XMin: 150, YMin: 150, XMax: 200, YMax: 199}, true}, // bottom edge is shared
	}
	for _, tc := range tests {
		if got := cutOff(tc.box, tile, 300, 400); got != tc.want {
			t.Errorf("cutOff(%+v) = %v, want %v", tc.box, got, tc.want)
		}
	}
}

func TestMergeKeepsTheBestOfEachGarment(t *testing.T) {
	dets := []Detection{
		{Box: Box{XMin: 0, YMin: 0, XMax: 10, YMax: 10}, TypeIndex: 0, Score: 0.6},
		{Box: Box{XMin: 1, YMin: 1, XMax: 10, YMax: 10}, TypeIndex: 0, Score: 0.9}, // same garment, better
		{Box: Box{XMin: 1, YMin: 1, XMax: 10, YMax: 10}, TypeIndex: 1, Score: 0.7}, // another class
		{Box: Box{XMin: 20, YMin: 20, XMax: 30, YMax: 30}, TypeIndex: 0, Score: 0.8},
	}
	got := merge(dets)
	scores := make([]float32, len(got))
	for i, d := range got {
		scores[i] = d.Score
	}
	if !slices.Equal(scores, []float32{0.9, 0.8, 0.7}) {
		t.Fatalf("got scores %v, want 0.9, 0.8, 0.7", scores)
	}
}

func TestIoU(t *testing.T) {
	a := Box{XMin: 0, YMin: 0, XMax: 10, YMax: 10}
	for _, tc := range []struct {
		b    Box
		want float32
	}{
		{a, 1},
		{Box{XMin: 5, YMin: 0, XMax: 15, YMax: 10}, 50.0 / 150},
		{Box{XMin: 10, YMin: 0, XMax: 20, YMax: 10}, 0},
		{Box{}, 0},
	} {
		if got := IoU(a, tc.b); math.Abs(float64(got-tc.want)) > 1e-6 {
			t.Errorf("IoU(%+v) = %v, want %v", tc.b, got, tc.want)
		}
	}
}

// brightDetector is a detector that really looks: it answers each image with the box of
// its bright pixels (class 0, score 0.9), or nothing when none is bright. It records the
// batch size of every run.
type brightDetector struct{ batches []int }

func (f *brightDetector) Run(_ context.Context, _ string, in map[string]*tensor.Tensor, _ []string) (map[string]*tensor.Tensor, error) {
	im := in["images"]
	n, h, w, k := int(im.Shape[0]), int(im.Shape[1]), int(im.Shape[2]), 1
	f.batches = append(f.batches, n)
	boxes, scores, classes, num := make([]float32, n*k*4), make([]float32, n*k), make([]float32, n*k), make([]float32, n)
	for i := range n {
		x0, y0, x1, y1 := w, h, -1, -1
		for y := range h {
			for x := range w {
				if im.Uint8[(i*h+y)*w+x] > 128 {
					x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
				}
			}
		}
		if x1 < 0 {
			continue
		}
		num[i], scores[i] = 1, 0.9
		copy(boxes[i*4:], []float32{float32(y0) / float32(h), float32(x0) / float32(w), float32(y1+1) / float32(h), float32(x1+1) / float32(w)})
	}
	return detectorOutputs(n, k, boxes, scores, classes, num), nil
}

func (f *brightDetector) Close() error { return nil }

// smallGarment is a 64x48 picture, black but for a bright 6x6 square at (33, 17):
// shrunk whole to the fake detector's 8x8 input (nearest neighbour, every 8th pixel)
// it falls between the sampled pixels.
func smallGarment() imageio.Source { return brightPatch(64, 48, 33, 17, 39, 23) }

func TestDetectTilingFindsWhatTheWholePictureMisses(t *testing.T) {
	for _, mode := range []Tiling{TilingOff, TilingAuto, TilingOn} {
		t.Run(mode.String(), func(t *testing.T) {
			det := &brightDetector{}
			d, _ := fakeSetupWith(t, det)
			req := Defaults
			req.Image, req.Tiling, req.SkipClassification = smallGarment(), mode, true
			res, err := d.Detect(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			tiles := len(Tiles(64, 48, 8, 8, mode))
			if !slices.Equal(det.batches, []int{1 + tiles}) {
				t.Fatalf("got detector batches %v, want one batch of the picture and its %d tiles", det.batches, tiles)
			}
			if mode == TilingOff {
				if len(res.Detections) != 0 {
					t.Fatalf("got %v, want nothing: the whole picture shrunk to 8x8 misses the garment", res.Detections)
				}
				return
			}
			if len(res.Detections) != 1 {
				t.Fatalf("got %d detections %v, want the one garment once", len(res.Detections), res.Detections)
			}
			// Tiles are 20x20 seen at 8x8: a detector pixel is 2.5 picture pixels.
			if b := res.Detections[0].Box; IoU(b, Box{XMin: 33, YMin: 17, XMax: 39, YMax: 23}) < 0.4 {
				t.Fatalf("got box %+v, want about (33, 17)-(39, 23)", b)
			}
		})
	}
}

func TestTilingString(t *testing.T) {
	for mode, want := range map[Tiling]string{TilingAuto: "auto", TilingOff: "off", TilingOn: "on", 7: "Tiling(7)"} {
		if got := fmt.Sprint(mode); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
