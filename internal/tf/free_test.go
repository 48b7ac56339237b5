package tf

import (
	"context"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/atelier-vision/atelier/internal/tensor"
)

// TestRunFreesEveryTensor runs a model many times and checks, through the test hook,
// that every input and output tensor was deleted by Run itself, not by a finalizer.
func TestRunFreesEveryTensor(t *testing.T) {
	m := loadModel(t, "affine")
	in, _ := tensor.NewUint8([]int64{8, 4, 4, 1}, make([]uint8, 8*16))
	const runs = 2000
	before := freedTensors.Load()
	for i := range runs {
		in.Uint8[0] = uint8(i)
		out, err := m.Run(context.Background(), "serving_default", map[string]*tensor.Tensor{"images": in}, nil)
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if len(out["probabilities"].Float32) != 8*3 {
			t.Fatalf("run %d: got %d probabilities, want 24", i, len(out["probabilities"].Float32))
		}
	}
	// One input and two outputs per run.
	if got, want := freedTensors.Load()-before, int64(runs*3); got != want {
		t.Fatalf("got %d tensors freed, want %d", got, want)
	}
}

// TestRunMemoryIsFlat feeds 1 MiB per run with the garbage collector off, so that
// finalizers never run: without deterministic freeing RSS would grow by the sum of
// the inputs.
func TestRunMemoryIsFlat(t *testing.T) {
	m := loadModel(t, "affine")
	const batch = 65536 // 65536 x 16 bytes = 1 MiB per input tensor
	in, _ := tensor.NewUint8([]int64{batch, 4, 4, 1}, make([]uint8, batch*16))
	for i := range in.Uint8 {
		in.Uint8[i] = uint8(i)
	}
	run := func() {
		out, err := m.Run(context.Background(), "total", map[string]*tensor.Tensor{"images": in}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := out["count"].Int64[0]; got != batch {
			t.Fatalf("got count %d, want %d", got, batch)
		}
	}
	run() // warm up TensorFlow's allocations
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	start := rss(t)
	const runs = 200
	for range runs {
		run()
	}
	if grew, limit := rss(t)-start, int64(64<<20); grew > limit {
		t.Fatalf("RSS grew by %d MiB over %d runs of 1 MiB inputs, want under %d MiB", grew>>20, runs, limit>>20)
	}
}

// rss returns the process's resident set size in bytes, from /proc.
func rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("cannot read RSS: %v", err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}
