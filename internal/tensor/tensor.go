// Package tensor holds the plain-Go currency of Atelier's core: dense tensors, the
// signatures that describe a model's inputs and outputs, and Engine, the one interface
// every model runner implements (a TensorFlow session in internal/tf, the dynamic
// batcher in internal/batching, fakes in unit tests). It has no cgo, so every package
// above internal/tf builds and tests without TensorFlow.
package tensor

import (
	"context"
	"fmt"
	"math"
	"unsafe"

	"github.com/atelier-vision/atelier/internal/errkind"
)

// ErrBadInput marks inputs a model cannot take: an unknown signature, input or
// output key, a missing input, or a tensor whose dtype or shape does not fit the
// signature. It is of kind errkind.Invalid.
var ErrBadInput = errkind.New(errkind.Invalid, "bad input")

// ErrClosed marks a call on an engine that has been closed (say, during shutdown or
// after its model version was unloaded). It is of kind errkind.Unavailable.
var ErrClosed = errkind.New(errkind.Unavailable, "closed")

// Engine runs a loaded model. Run feeds inputs, keyed by the signature's input keys,
// to the named signature and returns the requested outputs keyed by output key (nil
// outputs: all of them). Run reads its inputs only while it runs: it keeps none of
// them and returns no output that shares their memory, so a caller may reuse the
// inputs' memory once Run returns (the batcher stacks every batch into the same
// buffers). Close releases the model once the runs in flight finish.
type Engine interface {
	Run(ctx context.Context, signature string, inputs map[string]*Tensor, outputs []string) (map[string]*Tensor, error)
	Close() error
}

// DType names a tensor element type the way NumPy and TensorFlow's Python API do.
type DType string

// The element types a Tensor can hold. Signatures may name other TensorFlow types
// (for example "float64" or "string"); such inputs and outputs cannot be run.
const (
	Uint8   DType = "uint8"
	Int32   DType = "int32"
	Int64   DType = "int64"
	Float32 DType = "float32"
)

// Tensor is a dense tensor in Go memory: exactly one of the slices, the one matching
// DType, holds the elements, flat and row-major. Constructors keep the caller's slice
// without copying it.
type Tensor struct {
	DType   DType
	Shape   []int64
	Uint8   []uint8
	Float32 []float32
	Int32   []int32
	Int64   []int64
}

// NewUint8 returns a uint8 tensor of the given shape over data.
func NewUint8(shape []int64, data []uint8) (*Tensor, error) {
	return newTensor(&Tensor{DType: Uint8, Shape: shape, Uint8: data})
}

// NewFloat32 returns a float32 tensor of the given shape over data.
func NewFloat32(shape []int64, data []float32) (*Tensor, error) {
	return newTensor(&Tensor{DType: Float32, Shape: shape, Float32: data})
}

// NewInt32 returns an int32 tensor of the given shape over data.
func NewInt32(shape []int64, data []int32) (*Tensor, error) {
	return newTensor(&Tensor{DType: Int32, Shape: shape, Int32: data})
}

// NewInt64 returns an int64 tensor of the given shape over data.
func NewInt64(shape []int64, data []int64) (*Tensor, error) {
	return newTensor(&Tensor{DType: Int64, Shape: shape, Int64: data})
}

func newTensor(t *Tensor) (*Tensor, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}

// NumElements returns the product of the shape's dimensions (1 for a scalar).
func NumElements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// Len returns the number of elements in the slice DType selects.
func (t *Tensor) Len() int {
	switch t.DType {
	case Uint8:
		return len(t.Uint8)
	case Float32:
		return len(t.Float32)
	case Int32:
		return len(t.Int32)
	case Int64:
		return len(t.Int64)
	}
	return 0
}

// Validate checks that the tensor is well formed: a supported DType, non-negative
// dimensions (those other than 0 multiplying to an int64), exactly one slice set (the
// one DType names) and prod(Shape) elements. Its errors wrap ErrBadInput.
func (t *Tensor) Validate() error {
	if err := t.validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	return nil
}

func (t *Tensor) validate() error {
	switch t.DType {
	case Uint8, Float32, Int32, Int64:
	default:
		return fmt.Errorf("unsupported dtype %q", t.DType)
	}
	// The dimensions other than 0 must multiply to an int64: otherwise NumElements
	// wraps, and a shape of 2^60 rows of 16 could pass for one that holds 0 elements,
	// which TensorFlow's TensorShape aborts the process on rather than refuse.
	nonzero := int64(1)
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("shape %v has a negative dimension", t.Shape)
		}
		if d > 0 {
			if nonzero > math.MaxInt64/d {
				return fmt.Errorf("shape %v: its dimensions multiply past the largest int64", t.Shape)
			}
			nonzero *= d
		}
	}
	set := 0
	for _, isSet := range []bool{t.Uint8 != nil, t.Float32 != nil, t.Int32 != nil, t.Int64 != nil} {
		if isSet {
			set++
		}
	}
	want := NumElements(t.Shape)
	if set > 1 || (want != 0 && t.Len() == 0) {
		return fmt.Errorf("a %s tensor must set its %s slice and no other", t.DType, t.DType)
	}
	if got := int64(t.Len()); got != want {
		return fmt.Errorf("%s tensor of shape %v holds %d elements, want %d", t.DType, t.Shape, got, want)
	}
	return nil
}

// Bytes returns the elements as raw host-order bytes, sharing memory with the slice.
func (t *Tensor) Bytes() []byte {
	switch t.DType {
	case Uint8:
		return t.Uint8
	case Float32:
		return asBytes(t.Float32)
	case Int32:
		return asBytes(t.Int32)
	case Int64:
		return asBytes(t.Int64)
	}
	return nil
}

func asBytes[E float32 | int32 | int64](s []E) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(s[0])))
}

// FromBytes returns a tensor of dtype and shape holding a copy of raw, which must be
// the tensor's host-order bytes.
func FromBytes(dtype DType, shape []int64, raw []byte) (*Tensor, error) {
	t := &Tensor{DType: dtype, Shape: shape}
	n := int(NumElements(shape))
	switch dtype {
	case Uint8:
		t.Uint8 = make([]uint8, n)
	case Float32:
		t.Float32 = make([]float32, n)
	case Int32:
		t.Int32 = make([]int32, n)
	case Int64:
		t.Int64 = make([]int64, n)
	default:
		return nil, fmt.Errorf("tensor: cannot hold a %s tensor", dtype)
	}
	dst := t.Bytes()
	if len(dst) != len(raw) {
		return nil, fmt.Errorf("tensor: %s tensor of shape %v has %d bytes, want %d", dtype, shape, len(raw), len(dst))
	}
	copy(dst, raw)
	return t, nil
}
