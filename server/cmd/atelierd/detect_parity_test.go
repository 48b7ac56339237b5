package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/atelier-vision/atelier/bench/detecteval"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/tensor"
	"github.com/atelier-vision/atelier/internal/testenv"
	"github.com/atelier-vision/atelier/internal/tf"
)

// TestRawOutputsMatchPython runs the built detector on held-out scenes from Go and from
// TensorFlow in Python, on the same uint8 input, and compares all four outputs.
func TestDetectorRawOutputsMatchPython(t *testing.T) {
	root := testenv.ModelDir(t, "detector")
	py := testenv.Python(t)
	model, err := tf.Load(filepath.Join(root, "detector", "1"), tf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	m, err := models.NewModel(models.Spec{Name: "detector", Version: 1}, "", model, model.Signatures(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h, w, c, err := m.ImageShape()
	if err != nil {
		t.Fatal(err)
	}

	// Held-out scenes of exactly the model's input size, so no resize is involved.
	dir := t.TempDir()
	if err := detecteval.WriteHeldOut(py, root, dir, 3, fmt.Sprintf("%dx%d", w, h)); err != nil {
		testenv.Missing(t, "held-out scenes", err.Error())
	}
	truth, err := detecteval.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := len(truth.Scenes)
	pix := make([]uint8, 0, n*h*w*c)
	for _, s := range truth.Scenes {
		data, err := os.ReadFile(filepath.Join(dir, s.File))
		if err != nil {
			t.Fatal(err)
		}
		im, err := imageio.Decode(data, imageio.DefaultLimits)
		if err == nil {
			im, err = im.ToChannels(c)
		}
		if err != nil {
			t.Fatal(err)
		}
		pix = append(pix, im.Pix...)
	}
	in, _ := tensor.NewUint8([]int64{int64(n), int64(h), int64(w), int64(c)}, pix)
	got, err := model.Run(context.Background(), models.ServingSignature, map[string]*tensor.Tensor{"images": in}, nil)
	if err != nil {
		t.Fatal(err)
	}

	rawFile := filepath.Join(dir, "input.raw")
	if err := os.WriteFile(rawFile, pix, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-m", "atelier_train.detector", "predict", "--model", filepath.Join(root, "detector", "1"),
		"--raw", rawFile, "--shape", fmt.Sprintf("%d,%d,%d,%d", n, h, w, c))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python predict: %v", err)
	}
	var want map[string]any
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("python predict printed %q: %v", out, err)
	}

	detections := 0
	for _, key := range []string{"detection_boxes", "detection_scores", "detection_classes", "num_detections"} {
		g, w := got[key], flatten(want[key])
		if g == nil || len(g.Float32) != len(w) {
			t.Fatalf("%s: got %v, want %d values", key, g, len(w))
		}
		for i := range w {
			if math.Abs(float64(g.Float32[i])-w[i]) > 1e-5 {
				t.Fatalf("%s[%d]: Go %v, Python %v", key, i, g.Float32[i], w[i])
			}
		}
		if key == "num_detections" {
			for _, v := range w {
				detections += int(v)
			}
		}
	}
	if detections == 0 {
		t.Fatal("the detector found nothing in 3 held-out scenes; the comparison proves little")
	}
	t.Logf("%d scenes, %d detections: Go and Python agree within 1e-5", n, detections)
}

// flatten turns nested JSON arrays of numbers into one slice, row-major.
func flatten(v any) []float64 {
	switch x := v.(type) {
	case float64:
		return []float64{x}
	case []any:
		var out []float64
		for _, e := range x {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return nil
}
