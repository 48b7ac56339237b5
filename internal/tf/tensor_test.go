package tf

import (
	"errors"
	"slices"
	"testing"

	tfb "github.com/galeone/tensorflow/tensorflow/go"
)

func TestNewTensorValidates(t *testing.T) {
	tests := []struct {
		name    string
		make    func() (*Tensor, error)
		wantErr bool
	}{
		{"uint8 ok", func() (*Tensor, error) { return NewUint8([]int64{2, 3}, make([]uint8, 6)) }, false},
		{"float32 ok", func() (*Tensor, error) { return NewFloat32([]int64{3}, []float32{1, 2, 3}) }, false},
		{"int32 scalar", func() (*Tensor, error) { return NewInt32(nil, []int32{7}) }, false},
		{"int64 empty batch", func() (*Tensor, error) { return NewInt64([]int64{0, 4}, nil) }, false},
		{"too few elements", func() (*Tensor, error) { return NewUint8([]int64{2, 3}, make([]uint8, 5)) }, true},
		{"too many elements", func() (*Tensor, error) { return NewFloat32([]int64{2}, make([]float32, 3)) }, true},
		{"negative dimension", func() (*Tensor, error) { return NewInt32([]int64{-1, 2}, make([]int32, 2)) }, true},
		{"scalar without data", func() (*Tensor, error) { return NewInt64([]int64{}, nil) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.make()
			if got := err != nil; got != tt.wantErr {
				t.Fatalf("got error %v, want error: %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrBadInput) {
				t.Fatalf("got %v, want an error wrapping ErrBadInput", err)
			}
		})
	}
}

func TestValidateRejectsMixedSlices(t *testing.T) {
	tests := []struct {
		name string
		t    Tensor
	}{
		{"two slices", Tensor{DType: Uint8, Shape: []int64{1}, Uint8: []uint8{1}, Float32: []float32{1}}},
		{"wrong slice", Tensor{DType: Uint8, Shape: []int64{1}, Float32: []float32{1}}},
		{"unknown dtype", Tensor{DType: "float64", Shape: []int64{1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.t.Validate(); !errors.Is(err, ErrBadInput) {
				t.Fatalf("got %v, want an error wrapping ErrBadInput", err)
			}
		})
	}
}

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
		t    *Tensor
		want tfb.DataType
	}{
		{"uint8", &Tensor{DType: Uint8, Shape: []int64{2, 2}, Uint8: []uint8{0, 1, 254, 255}}, tfb.Uint8},
		{"int32", &Tensor{DType: Int32, Shape: []int64{3}, Int32: []int32{-1, 0, 1 << 30}}, tfb.Int32},
		{"int64", &Tensor{DType: Int64, Shape: []int64{1, 2}, Int64: []int64{-1 << 40, 1 << 50}}, tfb.Int64},
		{"float32", &Tensor{DType: Float32, Shape: []int64{}, Float32: []float32{3.25}}, tfb.Float},
		{"empty", &Tensor{DType: Float32, Shape: []int64{0, 3}}, tfb.Float},
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
