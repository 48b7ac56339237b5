package batching

import (
	"context"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/tensor"
)

// probsModel answers [rows, 10] probabilities for [rows, 28, 28, 1] uint8 images, the
// embedded classifier's shapes, without computing anything.
type probsModel struct{}

func (probsModel) Run(_ context.Context, _ string, in map[string]*tensor.Tensor, _ []string) (map[string]*tensor.Tensor, error) {
	rows := in["images"].Shape[0]
	return map[string]*tensor.Tensor{"probabilities": {DType: tensor.Float32, Shape: []int64{rows, 10}, Float32: make([]float32, rows*10)}}, nil
}

func (probsModel) Close() error { return nil }

// BenchmarkEngineRun is the batcher's own cost per call: one 28x28 image per call from
// 32 callers at once, batched up to 32, on a model that computes nothing. Its
// allocations are garbage the server collects on every request.
func BenchmarkEngineRun(b *testing.B) {
	e, err := New(probsModel{}, Config{MaxBatch: 32, MaxDelay: time.Millisecond, QueueSize: 256, Workers: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	b.ReportAllocs()
	b.SetParallelism(16) // 16 x GOMAXPROCS callers
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			in := map[string]*tensor.Tensor{"images": {DType: tensor.Uint8, Shape: []int64{1, 28, 28, 1}, Uint8: make([]uint8, 784)}}
			if _, err := e.Run(context.Background(), "serving_default", in, []string{"probabilities"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	c := e.Stats().Snapshot()
	runs, rows := c.Runs, c.Rows
	b.ReportMetric(float64(rows)/float64(runs), "rows/run")
}
