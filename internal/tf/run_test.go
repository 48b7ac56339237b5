package tf

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/atelier-vision/atelier/internal/tensor"
)

func TestRunMatchesPython(t *testing.T) {
	e := readExpected(t)
	tests := []struct {
		model, signature string
		c                runCase
	}{
		{"affine", "serving_default", e.Affine["serving_default"]},
		{"affine", "total", e.Affine["total"]},
		{"generator", "serving_default", e.Generator["serving_default"]},
	}
	for _, tt := range tests {
		t.Run(tt.model+"/"+tt.signature, func(t *testing.T) {
			if len(tt.c.Outputs) == 0 {
				t.Fatal("expected.json has no outputs for this case")
			}
			m := loadModel(t, tt.model)
			inputs := map[string]*tensor.Tensor{}
			for k, v := range tt.c.Inputs {
				inputs[k] = v.toTensor(t)
			}
			var keys []string
			for k := range tt.c.Outputs {
				keys = append(keys, k)
			}
			got, err := m.Run(context.Background(), tt.signature, inputs, keys)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(keys) {
				t.Fatalf("got %d outputs, want %d", len(got), len(keys))
			}
			for k, want := range tt.c.Outputs {
				sameTensor(t, k, got[k], want.toTensor(t), 1e-6)
			}
		})
	}
}

func TestRunNilOutputsFetchesAll(t *testing.T) {
	m := loadModel(t, "affine")
	in, _ := tensor.NewUint8([]int64{2, 4, 4, 1}, make([]uint8, 32))
	got, err := m.Run(context.Background(), "serving_default", map[string]*tensor.Tensor{"images": in}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"logits", "probabilities"} {
		if o := got[k]; o == nil || fmt.Sprint(o.Shape) != "[2 3]" {
			t.Fatalf("output %q: got %+v, want a float32 [2 3] tensor", k, o)
		}
	}
}

func TestRunBadInput(t *testing.T) {
	e := readExpected(t)
	m := loadModel(t, "generator")
	good := e.Generator["serving_default"]
	z, labels := good.Inputs["z"].toTensor(t), good.Inputs["labels"].toTensor(t)
	f32 := func(shape ...int64) *tensor.Tensor {
		x, _ := tensor.NewFloat32(shape, make([]float32, tensor.NumElements(shape)))
		return x
	}
	i32 := func(shape ...int64) *tensor.Tensor {
		x, _ := tensor.NewInt32(shape, make([]int32, tensor.NumElements(shape)))
		return x
	}
	tests := []struct {
		name      string
		signature string
		inputs    map[string]*tensor.Tensor
		outputs   []string
	}{
		{"unknown signature", "nope", map[string]*tensor.Tensor{"z": z, "labels": labels}, nil},
		{"unknown input key", "serving_default", map[string]*tensor.Tensor{"z": z, "labels": labels, "extra": z}, nil},
		{"missing input", "serving_default", map[string]*tensor.Tensor{"z": z}, nil},
		{"nil input", "serving_default", map[string]*tensor.Tensor{"z": z, "labels": nil}, nil},
		{"wrong dtype", "serving_default", map[string]*tensor.Tensor{"z": z, "labels": f32(5)}, nil},
		{"wrong rank", "serving_default", map[string]*tensor.Tensor{"z": f32(5, 8, 1), "labels": labels}, nil},
		{"wrong fixed dim", "serving_default", map[string]*tensor.Tensor{"z": f32(5, 7), "labels": labels}, nil},
		{"malformed tensor", "serving_default", map[string]*tensor.Tensor{"z": {DType: tensor.Float32, Shape: []int64{5, 8}}, "labels": labels}, nil},
		{"unknown output", "serving_default", map[string]*tensor.Tensor{"z": z, "labels": labels}, []string{"nope"}},
		{"output twice", "serving_default", map[string]*tensor.Tensor{"z": z, "labels": labels}, []string{"images", "images"}},
		// Caught by TensorFlow, not by the signature check: batch sizes disagree.
		{"batch mismatch", "serving_default", map[string]*tensor.Tensor{"z": f32(2, 8), "labels": i32(3)}, nil},
		// Caught by TensorFlow: a label outside the embedding table.
		{"label out of range", "serving_default", map[string]*tensor.Tensor{"z": f32(1, 8), "labels": {DType: tensor.Int32, Shape: []int64{1}, Int32: []int32{99}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Run(context.Background(), tt.signature, tt.inputs, tt.outputs)
			if !errors.Is(err, tensor.ErrBadInput) {
				t.Fatalf("got %v, want an error wrapping ErrBadInput", err)
			}
			t.Log(err)
		})
	}
	// The model still works after all that.
	got, err := m.Run(context.Background(), "serving_default", map[string]*tensor.Tensor{"z": z, "labels": labels}, []string{"images"})
	if err != nil {
		t.Fatalf("good run after bad ones: got %v, want nil", err)
	}
	sameTensor(t, "images", got["images"], good.Outputs["images"].toTensor(t), 0)
}

func TestRunCancelledContext(t *testing.T) {
	m := loadModel(t, "affine")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in, _ := tensor.NewUint8([]int64{1, 4, 4, 1}, make([]uint8, 16))
	before := freedTensors.Load()
	_, err := m.Run(ctx, "serving_default", map[string]*tensor.Tensor{"images": in}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if got := freedTensors.Load() - before; got != 0 {
		t.Fatalf("got %d tensors created and freed, want 0 (nothing should run)", got)
	}
}

func TestRunConcurrent(t *testing.T) {
	e := readExpected(t)
	m := loadModel(t, "generator")
	c := e.Generator["serving_default"]
	inputs := map[string]*tensor.Tensor{"z": c.Inputs["z"].toTensor(t), "labels": c.Inputs["labels"].toTensor(t)}
	want := c.Outputs["images"].toTensor(t)
	const workers, runs = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range runs {
				got, err := m.Run(context.Background(), "serving_default", inputs, []string{"images"})
				if err != nil {
					errs <- err
					return
				}
				if fmt.Sprint(got["images"].Uint8) != fmt.Sprint(want.Uint8) {
					errs <- fmt.Errorf("got images %v, want %v", got["images"].Uint8, want.Uint8)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
