package tf

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atelier-vision/atelier/internal/precision"
	"github.com/atelier-vision/atelier/internal/tensor"
)

// BenchmarkSessionOptions compares the session settings Atelier can choose on the
// shipped 28x28 classifier and the full 224x224 VGG19 (classifier-full): thread
// pools and precision, each at a small and a large batch. Settings TensorFlow reads
// once per process (XLA auto-clustering, oneDNN on or off) come from the
// environment; bench/cpu-options.sh runs this benchmark under each of them and
// prints the table docs/BENCHMARKS.md quotes.
//
// ATELIER_BENCH_OPTIONS_MODELS (default "classifier,classifier-full") and
// ATELIER_BENCH_OPTIONS_PRECISIONS (default "fp32,bf16") narrow the grid.
func BenchmarkSessionOptions(b *testing.B) {
	models := map[string]struct {
		shape   []int64 // one image
		batches []int
	}{
		"classifier":      {[]int64{28, 28, 1}, []int{1, 32}},
		"classifier-full": {[]int64{224, 224, 3}, []int{1, 16}},
	}
	// intra/inter: TensorFlow's defaults (one thread per core each); one op thread
	// with ops on the caller (what two session workers would each want); two op
	// threads with ops on the caller.
	threads := [][2]int{{0, 0}, {1, -1}, {2, -1}}
	for _, name := range listEnv("ATELIER_BENCH_OPTIONS_MODELS", "classifier,classifier-full") {
		m, ok := models[name]
		if !ok {
			b.Fatalf("unknown model %q", name)
		}
		dir := filepath.Join("..", "..", "savedmodels", name, "1")
		if _, err := os.Stat(dir); err != nil {
			b.Fatalf("%s is missing: run `make models` (for classifier-full: cd savedmodels && ../.venv/bin/python -m atelier_train.build --only classifier-full)", dir)
		}
		for _, p := range listEnv("ATELIER_BENCH_OPTIONS_PRECISIONS", "fp32,bf16") {
			for _, th := range threads {
				model, err := Load(dir, Options{IntraOpThreads: th[0], InterOpThreads: th[1], Precision: precision.Precision(p)})
				if err != nil {
					b.Fatal(err)
				}
				for _, batch := range m.batches {
					label := fmt.Sprintf("model=%s/precision=%s/intra=%d/inter=%d/batch=%d", name, p, th[0], th[1], batch)
					b.Run(label, func(b *testing.B) { benchRun(b, model, m.shape, batch) })
				}
				model.Close()
			}
		}
	}
}

func benchRun(b *testing.B, model *Model, shape []int64, batch int) {
	full := append([]int64{int64(batch)}, shape...)
	pixels := make([]uint8, tensor.NumElements(full))
	for i := range pixels {
		pixels[i] = uint8(rand.IntN(256))
	}
	x, err := tensor.NewUint8(full, pixels)
	if err != nil {
		b.Fatal(err)
	}
	in := map[string]*tensor.Tensor{"images": x}
	run := func() {
		if _, err := model.Run(context.Background(), "serving_default", in, []string{"probabilities"}); err != nil {
			b.Fatal(err)
		}
	}
	run() // the first run optimises the graph (and, with XLA, compiles it)
	for b.Loop() {
		run()
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
}

func listEnv(name, def string) []string {
	v := os.Getenv(name)
	if v == "" {
		v = def
	}
	return strings.Split(v, ",")
}
