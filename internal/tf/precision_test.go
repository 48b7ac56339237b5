package tf

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/atelier-vision/atelier/internal/precision"
	"github.com/atelier-vision/atelier/internal/tensor"
)

// TestBF16RewriteChangesWhatRuns loads the same model in fp32 and bf16 and checks that
// the rewrite really runs: the outputs differ, by no more than bf16's rounding.
func TestBF16RewriteChangesWhatRuns(t *testing.T) {
	host := precision.HostCPU()
	if !host.NativeBF16() {
		// Without native bf16, auto must not pick it; that is what runs here.
		if p, why := precision.Choose(precision.Auto, host, precision.Gate{Passed: true}, nil); p != precision.FP32 {
			t.Fatalf("auto on a CPU without native bf16 chose %s (%s), want fp32", p, why)
		}
		t.Log("this CPU has no native bf16; checked that auto falls back to fp32")
		return
	}
	dir := filepath.Join(fixtures(t), "affine")
	pix := make([]uint8, 64*16)
	for i := range pix {
		pix[i] = uint8(i * 37 % 251)
	}
	run := func(p precision.Precision) []float32 {
		m, err := Load(dir, Options{Precision: p})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		in, _ := tensor.NewUint8([]int64{64, 4, 4, 1}, pix)
		out, err := m.Run(context.Background(), "serving_default", map[string]*tensor.Tensor{"images": in}, []string{"logits"})
		if err != nil {
			t.Fatal(err)
		}
		return out["logits"].Float32
	}
	fp32, bf16 := run(precision.FP32), run(precision.BF16)
	var worst float64
	for i := range fp32 {
		worst = max(worst, math.Abs(float64(fp32[i]-bf16[i])))
	}
	// Logits here are a few units; bf16 keeps 8 bits of mantissa.
	if worst == 0 || worst > 0.1 {
		t.Fatalf("max |fp32 - bf16| over %d logits is %g, want above 0 (the rewrite ran) and at most 0.1", len(fp32), worst)
	}
	t.Logf("%s: max |fp32 - bf16| = %g over %d logits", host, worst, len(fp32))
}

func TestUnknownPrecisionIsRefused(t *testing.T) {
	if _, err := Load(filepath.Join(fixtures(t), "affine"), Options{Precision: "fp16"}); err == nil {
		t.Fatal("Load with precision fp16: got no error")
	}
}
