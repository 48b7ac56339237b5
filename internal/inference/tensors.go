package inference

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/atelier-vision/atelier/internal/classify"
	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/tensor"
)

// MaxElements bounds the elements of one input tensor; the gRPC message size limit
// bounds its bytes first, this catches shapes whose product overflows.
const MaxElements = 1 << 31

// MaxBatch bounds the batch dimension of a tensor model's request: the examples one
// call may bring, as Classify's images and Generate's designs. One call of 8,192
// images would otherwise run as one session run, for half a minute and gigabytes.
const MaxBatch = classify.MaxImages

// MaxRank bounds the dimensions of one input's shape (TensorFlow's own limit is 254),
// so a shape of millions of dimensions is refused before anything walks or prints it.
const MaxRank = 32

// The V2 datatypes Atelier's signatures use.
const (
	TypeUint8 = "UINT8"
	TypeInt32 = "INT32"
	TypeInt64 = "INT64"
	TypeFP32  = "FP32"
	TypeBytes = "BYTES"
)

var v2Types = map[tensor.DType]string{
	tensor.Uint8: TypeUint8, tensor.Int32: TypeInt32, tensor.Int64: TypeInt64, tensor.Float32: TypeFP32,
}

// Datatype returns the V2 name of a signature dtype ("float64" becomes "FP64", and
// so on for types Atelier cannot run).
func Datatype(d tensor.DType) string {
	if t, ok := v2Types[d]; ok {
		return t
	}
	others := map[tensor.DType]string{"float64": "FP64", "float16": "FP16", "bfloat16": "BF16", "int8": "INT8",
		"int16": "INT16", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64", "bool": "BOOL", "string": TypeBytes}
	if t, ok := others[d]; ok {
		return t
	}
	return string(d)
}

// ElementSize returns the bytes of one element of a numeric V2 datatype, 0 otherwise.
func ElementSize(datatype string) int {
	switch datatype {
	case "BOOL", "UINT8", "INT8":
		return 1
	case "UINT16", "INT16", "FP16", "BF16":
		return 2
	case "UINT32", "INT32", "FP32":
		return 4
	case "UINT64", "INT64", "FP64":
		return 8
	}
	return 0
}

// invalid returns an Invalid error about one input.
func invalid(input, format string, args ...any) error {
	return fmt.Errorf("%w: input %q: %s", errkind.Invalid, input, fmt.Sprintf(format, args...))
}

// Elements checks a request shape (at most MaxRank dimensions, each >= 0, the
// product of those other than 0 at most MaxElements) and returns its element count.
// A 0 does not excuse the others: [0, 2^40] holds nothing, but a dimension that
// size must not reach the engine either.
func Elements(input string, shape []int64) (int64, error) {
	if len(shape) > MaxRank {
		return 0, invalid(input, "shape has %d dimensions, over %d", len(shape), MaxRank)
	}
	n, nonzero := int64(1), int64(1)
	for i, d := range shape {
		if d < 0 {
			return 0, invalid(input, "shape %v: dimension %d is %d, want >= 0", shape, i, d)
		}
		if d == 0 {
			n = 0
			continue
		}
		if nonzero > MaxElements/d {
			if slices.Contains(shape, 0) {
				return 0, invalid(input, "shape %v: its dimensions other than 0 multiply to more than %d", shape, int64(MaxElements))
			}
			return 0, invalid(input, "shape %v holds more than %d elements", shape, int64(MaxElements))
		}
		nonzero *= d
		n *= d
	}
	return n, nil
}

// checkNames rejects duplicate and unknown inputs and reports missing ones, naming
// what the model takes.
func checkNames(model string, ins []Input, want []TensorMeta) error {
	seen := map[string]bool{}
	known := map[string]bool{}
	var names []string
	for _, w := range want {
		known[w.Name] = true
		names = append(names, w.Name)
	}
	for _, in := range ins {
		if seen[in.Name] {
			return invalid(in.Name, "given twice")
		}
		seen[in.Name] = true
		if !known[in.Name] {
			return invalid(in.Name, "model %q has no such input (inputs: %v)", model, names)
		}
	}
	for _, w := range want {
		if !seen[w.Name] {
			return invalid(w.Name, "missing; model %q takes %v", model, names)
		}
	}
	return nil
}

// checkShape compares a request shape with a signature shape.
func checkShape(in Input, want []int64) error {
	if want == nil {
		return nil
	}
	if len(in.Shape) != len(want) {
		return invalid(in.Name, "shape %v has rank %d, want %s (rank %d)", in.Shape, len(in.Shape), tensor.FormatShape(want), len(want))
	}
	for i, d := range want {
		if d >= 0 && in.Shape[i] != d {
			return invalid(in.Name, "shape %v, want %s (dimension %d must be %d)", in.Shape, tensor.FormatShape(want), i, d)
		}
	}
	return nil
}

// checkOutputs returns the outputs to compute: the named ones (each known, none
// twice), or all of them.
func checkOutputs(model string, names []string, all []TensorMeta) ([]string, error) {
	var known []string
	for _, o := range all {
		known = append(known, o.Name)
	}
	if len(names) == 0 {
		return known, nil
	}
	for i, n := range names {
		if !slices.Contains(known, n) {
			return nil, fmt.Errorf("%w: output %q: model %q has no such output (outputs: %v)", errkind.Invalid, n, model, known)
		}
		if slices.Contains(names[:i], n) {
			return nil, fmt.Errorf("%w: output %q: requested twice", errkind.Invalid, n)
		}
	}
	return names, nil
}

// toTensor checks one numeric input against its signature entry and copies it into
// a tensor.
func toTensor(in Input, info tensor.Info) (*tensor.Tensor, error) {
	want := Datatype(info.DType)
	if in.Datatype != want {
		return nil, invalid(in.Name, "datatype %q, want %s", in.Datatype, want)
	}
	if _, ok := v2Types[info.DType]; !ok {
		return nil, invalid(in.Name, "datatype %s is not supported by Atelier's engine", want)
	}
	n, err := Elements(in.Name, in.Shape)
	if err != nil {
		return nil, err
	}
	if err := checkShape(in, info.Shape); err != nil {
		return nil, err
	}
	size := int64(ElementSize(want))
	if int64(len(in.Raw)) != n*size {
		return nil, invalid(in.Name, "holds %d bytes, want %d (%d %s elements of shape %v)", len(in.Raw), n*size, n, want, in.Shape)
	}
	t, err := tensor.FromBytes(info.DType, in.Shape, in.Raw)
	if err != nil {
		return nil, invalid(in.Name, "%v", err)
	}
	return t, nil
}

// inferTensor runs the tensor model: inputs and outputs as the serving signature
// defines them.
func inferTensor(ctx context.Context, m *models.Model, req Request) ([]Output, error) {
	sig, _ := m.Signature(models.ServingSignature)
	ins, outs := metas(sig.Inputs), metas(sig.Outputs)
	if err := checkNames(req.Model, req.Inputs, ins); err != nil {
		return nil, err
	}
	names, err := checkOutputs(req.Model, req.Outputs, outs)
	if err != nil {
		return nil, err
	}
	feed := map[string]*tensor.Tensor{}
	batch, batchInput := int64(-1), ""
	for _, in := range req.Inputs {
		info, _ := sig.Input(in.Name)
		t, err := toTensor(in, info)
		if err != nil {
			return nil, err
		}
		if len(t.Shape) > 0 && info.Shape != nil && len(info.Shape) > 0 && info.Shape[0] < 0 {
			if batch >= 0 && t.Shape[0] != batch {
				return nil, invalid(in.Name, "batch dimension %d disagrees with the other inputs' %d", t.Shape[0], batch)
			}
			batch, batchInput = t.Shape[0], in.Name
		}
		feed[in.Name] = t
	}
	if batch == 0 {
		return nil, invalid(batchInput, "shape %v: the batch dimension is 0; send at least one example", feed[batchInput].Shape)
	}
	if batch > MaxBatch {
		return nil, invalid(batchInput, "shape %v: %d examples is over the limit of %d per request (send more requests; the server batches them)",
			feed[batchInput].Shape, batch, MaxBatch)
	}
	if err := m.CheckValues(feed); err != nil {
		return nil, err
	}
	res, err := m.Engine.Run(ctx, models.ServingSignature, feed, names)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", m.Spec(), err)
	}
	out := make([]Output, len(names))
	for i, n := range names {
		t := res[n]
		if t == nil {
			return nil, fmt.Errorf("run %s: no output %q", m.Spec(), n)
		}
		out[i] = Output{Name: n, Datatype: Datatype(t.DType), Shape: t.Shape, Raw: slices.Clone(t.Bytes())}
	}
	return out, nil
}

// EncodeBytes writes BYTES elements the V2 raw way: each behind its 4-byte
// little-endian length.
func EncodeBytes(elems [][]byte) []byte {
	size := 0
	for _, e := range elems {
		size += 4 + len(e)
	}
	out := make([]byte, 0, size)
	for _, e := range elems {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(e)))
		out = append(out, e...)
	}
	return out
}

// DecodeBytes splits a raw BYTES buffer of n elements, rejecting a length prefix that
// runs past the buffer and bytes left over.
func DecodeBytes(input string, raw []byte, n int64) ([][]byte, error) {
	elems := make([][]byte, 0, min(n, int64(len(raw)/4)+1))
	rest := raw
	for i := int64(0); i < n; i++ {
		if len(rest) < 4 {
			return nil, invalid(input, "BYTES element %d: %d bytes left, too few for its 4-byte length", i, len(rest))
		}
		l := binary.LittleEndian.Uint32(rest)
		if uint64(l) > uint64(len(rest)-4) {
			return nil, invalid(input, "BYTES element %d: length prefix %d runs past the buffer (%d bytes left)", i, l, len(rest)-4)
		}
		elems = append(elems, rest[4:4+l])
		rest = rest[4+l:]
	}
	if len(rest) != 0 {
		return nil, invalid(input, "%d bytes left over after %d BYTES elements", len(rest), n)
	}
	return elems, nil
}

// float32Bytes returns little-endian bytes of fs.
func float32Bytes(fs []float32) []byte {
	out := make([]byte, 4*len(fs))
	for i, f := range fs {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(f))
	}
	return out
}

// int32Bytes returns little-endian bytes of is.
func int32Bytes(is []int32) []byte {
	out := make([]byte, 4*len(is))
	for i, v := range is {
		binary.LittleEndian.PutUint32(out[4*i:], uint32(v))
	}
	return out
}
