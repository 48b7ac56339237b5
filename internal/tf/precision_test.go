package tf

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/atelier-vision/atelier/internal/precision"
	"github.com/atelier-vision/atelier/internal/tensor"
)

// TestBF16RewriteChangesWhatRuns loads the same model in fp32 and bf16 and checks that
// the rewrite really runs: the outputs differ, by no more than bf16's rounding. On a
// CPU without native bf16 it checks the auto fallback instead, and says so.
func TestBF16RewriteChangesWhatRuns(t *testing.T) {
	host := precision.HostCPU()
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
	if !host.NativeBF16() {
		// Without native bf16, auto must not pick it, and what it picks runs as
		// fp32 does, to the bit.
		p, why := precision.Choose(precision.Auto, host, precision.Gate{Passed: true}, nil)
		if p != precision.FP32 {
			t.Fatalf("auto on a CPU without native bf16 chose %s (%s), want fp32", p, why)
		}
		if got, want := run(p), run(precision.FP32); !slices.Equal(got, want) {
			t.Fatalf("auto chose fp32 (%s) but its outputs differ from an fp32 session's", why)
		}
		t.Logf("%s: auto falls back to fp32, outputs identical", host)
		return
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

// TestAutoFallbackWithoutNativeBF16 runs the fallback branch above on every CPU, not
// only on those without native bf16: a child test process gets oneDNN capped below its
// bf16 kernels (ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI, which oneDNN honours), so there
// precision.HostCPU must report no native bf16 and auto must run fp32.
func TestAutoFallbackWithoutNativeBF16(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestBF16RewriteChangesWhatRuns$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI", "DNNL_MAX_CPU_ISA=")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "auto falls back to fp32, outputs identical") {
		t.Fatalf("the child test with oneDNN capped below bf16: %v\n%s", err, out)
	}
}

func TestUnknownPrecisionIsRefused(t *testing.T) {
	if _, err := Load(filepath.Join(fixtures(t), "affine"), Options{Precision: "fp16"}); err == nil {
		t.Fatal("Load with precision fp16: got no error")
	}
}
