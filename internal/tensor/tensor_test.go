package tensor

import (
	"errors"
	"testing"
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
