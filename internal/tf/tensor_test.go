package tf

import (
	"slices"
	"testing"

	"github.com/atelier-vision/atelier/internal/tensor"
	tfb "github.com/galeone/tensorflow/tensorflow/go"
)

// TestBindingsLayout guards the unsafe read of the bindings' Tensor.c: the pointer we
// read must be the tensor's own, as TensorFlow's C API reports it.
func TestBindingsLayout(t *testing.T) {
	if layoutErr != nil {
		t.Fatalf("got layout error %v, want the bindings' Tensor to be {c *C.TF_Tensor; shape []int64}", layoutErr)
	}
	x, err := tfb.NewTensor([][]int64{{1, 2, 3}, {4, 5, 6}})
	if err != nil {
		t.Fatal(err)
	}
	dt, rank := cTensorInfo(x)
	if dt != tfb.Int64 || rank != 2 {
		t.Fatalf("got C dtype %v rank %d, want %v rank 2", dt, rank, tfb.Int64)
	}
	if got, want := len(tensorBytes(x)), 6*8; got != want {
		t.Fatalf("got %d bytes in the C buffer, want %d", got, want)
	}
	before := freedTensors.Load()
	freeTensor(x)
	freeTensor(x) // a second free is a no-op
	if got := freedTensors.Load() - before; got != 1 {
		t.Fatalf("got %d frees, want 1", got)
	}
	if cTensor(x) != nil {
		t.Fatal("got a C pointer after free, want nil")
	}
}

func TestConvertRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		t    *tensor.Tensor
		want tfb.DataType
	}{
		{"uint8", &tensor.Tensor{DType: tensor.Uint8, Shape: []int64{2, 2}, Uint8: []uint8{0, 1, 254, 255}}, tfb.Uint8},
		{"int32", &tensor.Tensor{DType: tensor.Int32, Shape: []int64{3}, Int32: []int32{-1, 0, 1 << 30}}, tfb.Int32},
		{"int64", &tensor.Tensor{DType: tensor.Int64, Shape: []int64{1, 2}, Int64: []int64{-1 << 40, 1 << 50}}, tfb.Int64},
		{"float32", &tensor.Tensor{DType: tensor.Float32, Shape: []int64{}, Float32: []float32{3.25}}, tfb.Float},
		{"empty", &tensor.Tensor{DType: tensor.Float32, Shape: []int64{0, 3}}, tfb.Float},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, err := toTF(tt.t)
			if err != nil {
				t.Fatal(err)
			}
			defer freeTensor(x)
			if got := x.DataType(); got != tt.want {
				t.Fatalf("got TF dtype %v, want %v", got, tt.want)
			}
			back, err := fromTF(x)
			if err != nil {
				t.Fatal(err)
			}
			if back.DType != tt.t.DType || !slices.Equal(back.Shape, tt.t.Shape) || !slices.Equal(values(back), values(tt.t)) {
				t.Fatalf("got %+v, want %+v", back, tt.t)
			}
		})
	}
}
