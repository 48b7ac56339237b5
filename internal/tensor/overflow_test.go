package tensor

import (
	"errors"
	"math"
	"testing"
)

// TestValidateRefusesShapesWhoseProductOverflows: NumElements wraps in int64, so a
// shape whose dimensions multiply past it could pass for one that holds as many
// elements as the tensor has (2^60 rows of 16 wrap to 0, 2^60+1 rows of 16 to 16).
// TensorFlow's TensorShape aborts the process on such a shape; Validate must refuse
// it, as it refuses a dimension of -1, including when a 0 makes the tensor empty.
func TestValidateRefusesShapesWhoseProductOverflows(t *testing.T) {
	tests := []struct {
		name string
		t    *Tensor
	}{
		{"wraps to 0", &Tensor{DType: Uint8, Shape: []int64{1 << 60, 4, 4, 1}}},
		{"wraps to 16", &Tensor{DType: Uint8, Shape: []int64{1<<60 + 1, 4, 4, 1}, Uint8: make([]uint8, 16)}},
		{"wraps to 16 float32", &Tensor{DType: Float32, Shape: []int64{1<<60 + 1, 16}, Float32: make([]float32, 16)}},
		{"wraps negative", &Tensor{DType: Int64, Shape: []int64{1 << 62, 2}}},
		{"0 after the overflow", &Tensor{DType: Int32, Shape: []int64{1 << 62, 1 << 62, 0}}},
		{"0 before the overflow", &Tensor{DType: Int32, Shape: []int64{0, 1 << 62, 1 << 62}}},
		{"max int64 twice", &Tensor{DType: Uint8, Shape: []int64{math.MaxInt64, math.MaxInt64}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.t.Validate(); !errors.Is(err, ErrBadInput) {
				t.Fatalf("Validate(%s %v with %d elements) = %v, want ErrBadInput", tt.t.DType, tt.t.Shape, tt.t.Len(), err)
			}
			info := Info{Key: "x", DType: tt.t.DType, Shape: make([]int64, len(tt.t.Shape))}
			for i := range info.Shape {
				info.Shape[i] = -1
			}
			if err := info.Check(tt.t); !errors.Is(err, ErrBadInput) {
				t.Fatalf("Check = %v, want ErrBadInput", err)
			}
		})
	}
	// The largest products that fit still validate when empty.
	for _, shape := range [][]int64{{math.MaxInt64, 0}, {0, math.MaxInt64}, {1 << 31, 1 << 31, 0, 1}} {
		x := &Tensor{DType: Uint8, Shape: shape}
		if err := x.Validate(); err != nil {
			t.Errorf("Validate(uint8 %v, empty) = %v, want nil", shape, err)
		}
	}
}
