package tf

import (
	"bytes"
	"fmt"

	"github.com/atelier-vision/atelier/internal/tensor"
	tfb "github.com/galeone/tensorflow/tensorflow/go"
)

var toTFType = map[tensor.DType]tfb.DataType{
	tensor.Uint8:   tfb.Uint8,
	tensor.Int32:   tfb.Int32,
	tensor.Int64:   tfb.Int64,
	tensor.Float32: tfb.Float,
}

// dtypeOf names a TensorFlow type; types a tensor.Tensor cannot hold get names too, so that
// signatures read well.
func dtypeOf(dt tfb.DataType) tensor.DType {
	switch dt {
	case tfb.Uint8:
		return tensor.Uint8
	case tfb.Int32:
		return tensor.Int32
	case tfb.Int64:
		return tensor.Int64
	case tfb.Float:
		return tensor.Float32
	case tfb.Double:
		return "float64"
	case tfb.Half:
		return "float16"
	case tfb.Bfloat16:
		return "bfloat16"
	case tfb.Int8:
		return "int8"
	case tfb.Int16:
		return "int16"
	case tfb.Uint16:
		return "uint16"
	case tfb.Uint32:
		return "uint32"
	case tfb.Uint64:
		return "uint64"
	case tfb.Bool:
		return "bool"
	case tfb.String:
		return "string"
	}
	return tensor.DType(fmt.Sprintf("dtype(%d)", int(dt)))
}

// maxDims is the most dimensions a TensorFlow tensor may have
// (TensorShape::MaxDimensions).
const maxDims = 254

// toTF copies t into a new TensorFlow tensor (one memcpy). The caller frees it with
// freeTensor.
func toTF(t *tensor.Tensor) (*tfb.Tensor, error) {
	dt, ok := toTFType[t.DType]
	if !ok {
		return nil, fmt.Errorf("%w: unsupported dtype %q", tensor.ErrBadInput, t.DType)
	}
	// TensorFlow's TensorShape does not refuse a shape it cannot hold, it aborts the
	// process (a CHECK): more than maxDims dimensions, or dimensions whose product
	// overflows. Validate refuses the latter (and a shape its data does not fill), so
	// nothing reaches TF_AllocateTensor that it would abort on.
	if len(t.Shape) > maxDims {
		return nil, fmt.Errorf("%w: shape has %d dimensions, over TensorFlow's %d", tensor.ErrBadInput, len(t.Shape), maxDims)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	// ReadTensor keeps the shape slice: give it its own copy.
	shape := append([]int64{}, t.Shape...)
	out, err := tfb.ReadTensor(dt, shape, bytes.NewReader(t.Bytes()))
	if err != nil {
		return nil, fmt.Errorf("tf: copy %s tensor %v into TensorFlow: %w", t.DType, t.Shape, err)
	}
	// When TensorFlow cannot allocate the buffer (malloc fails), TF_AllocateTensor
	// still returns a tensor, with no data; ReadTensor then copies nothing and reports
	// no error, and a session fed that tensor reads through a null pointer (SIGSEGV).
	if layoutErr == nil && len(tensorBytes(out)) != len(t.Bytes()) {
		freeTensor(out)
		return nil, fmt.Errorf("tf: copy %s tensor %v into TensorFlow: could not allocate %d bytes", t.DType, t.Shape, len(t.Bytes()))
	}
	return out, nil
}

// fromTF copies a TensorFlow tensor into Go memory (one memcpy). It does not free t.
func fromTF(t *tfb.Tensor) (*tensor.Tensor, error) {
	var raw []byte
	if layoutErr == nil {
		raw = tensorBytes(t)
	} else {
		var b bytes.Buffer
		if _, err := t.WriteContentsTo(&b); err != nil {
			return nil, fmt.Errorf("tf: read %s tensor: %w", dtypeOf(t.DataType()), err)
		}
		raw = b.Bytes()
	}
	return tensor.FromBytes(dtypeOf(t.DataType()), append([]int64{}, t.Shape()...), raw)
}
