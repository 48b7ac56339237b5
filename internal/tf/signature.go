package tf

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	tfb "github.com/galeone/tensorflow/tensorflow/go"
)

// Signature is one of a SavedModel's serving signatures, with its inputs and outputs
// sorted by key.
type Signature struct {
	Name    string
	Inputs  []TensorInfo
	Outputs []TensorInfo
}

// TensorInfo describes a signature input or output.
type TensorInfo struct {
	// Key is the signature's key for the tensor, such as "images".
	Key   string
	DType DType
	// Shape has -1 for a dimension of unknown size (usually the batch) and is nil
	// when even the rank is unknown. A scalar has an empty, non-nil Shape.
	Shape []int64
}

// signature is a Signature with its keys resolved to graph outputs.
type signature struct {
	Signature
	in, out map[string]tfb.Output
}

// newSignature resolves a signature read by the bindings against the graph.
func newSignature(g *tfb.Graph, name string, s tfb.Signature) (*signature, error) {
	sig := &signature{Signature: Signature{Name: name}, in: map[string]tfb.Output{}, out: map[string]tfb.Output{}}
	var err error
	if sig.Inputs, err = tensorInfos(g, s.Inputs, sig.in, true); err != nil {
		return nil, fmt.Errorf("signature %q: %w", name, err)
	}
	if sig.Outputs, err = tensorInfos(g, s.Outputs, sig.out, false); err != nil {
		return nil, fmt.Errorf("signature %q: %w", name, err)
	}
	return sig, nil
}

func tensorInfos(g *tfb.Graph, m map[string]tfb.TensorInfo, outs map[string]tfb.Output, inputs bool) ([]TensorInfo, error) {
	infos := make([]TensorInfo, 0, len(m))
	for key, ti := range m {
		out, err := graphOutput(g, ti.Name)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		shape, err := ti.Shape.ToSlice()
		if err != nil {
			shape = nil
		}
		// The bindings read an unknown-rank TensorShapeProto as a scalar. Inputs are
		// placeholders, whose graph shape is exact, so ask the graph.
		if inputs && len(shape) == 0 && out.Shape().NumDimensions() < 0 {
			shape = nil
		}
		outs[key] = out
		infos = append(infos, TensorInfo{Key: key, DType: dtypeOf(ti.DType), Shape: shape})
	}
	slices.SortFunc(infos, func(a, b TensorInfo) int { return strings.Compare(a.Key, b.Key) })
	return infos, nil
}

// graphOutput finds the graph tensor "op:index" (or "op", index 0).
func graphOutput(g *tfb.Graph, name string) (tfb.Output, error) {
	opName, idx := name, 0
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		n, err := strconv.Atoi(name[i+1:])
		if err != nil {
			return tfb.Output{}, fmt.Errorf("bad tensor name %q", name)
		}
		opName, idx = name[:i], n
	}
	op := g.Operation(opName)
	if op == nil {
		return tfb.Output{}, fmt.Errorf("tensor %q: no operation %q in the graph", name, opName)
	}
	if idx < 0 || idx >= op.NumOutputs() {
		return tfb.Output{}, fmt.Errorf("tensor %q: operation has %d outputs", name, op.NumOutputs())
	}
	return op.Output(idx), nil
}

// check reports whether t fits info: same dtype, same rank, same known dimensions.
func (info TensorInfo) check(t *Tensor) error {
	if t == nil {
		return fmt.Errorf("%w: input %q is nil", ErrBadInput, info.Key)
	}
	if err := t.validate(); err != nil {
		return fmt.Errorf("%w: input %q: %v", ErrBadInput, info.Key, err)
	}
	if t.DType != info.DType {
		return fmt.Errorf("%w: input %q: got dtype %s, want %s", ErrBadInput, info.Key, t.DType, info.DType)
	}
	if info.Shape == nil {
		return nil
	}
	if len(t.Shape) != len(info.Shape) {
		return fmt.Errorf("%w: input %q: got shape %v (rank %d), want %v (rank %d)",
			ErrBadInput, info.Key, t.Shape, len(t.Shape), formatShape(info.Shape), len(info.Shape))
	}
	for i, d := range info.Shape {
		if d >= 0 && t.Shape[i] != d {
			return fmt.Errorf("%w: input %q: got shape %v, want %v (dimension %d must be %d)",
				ErrBadInput, info.Key, t.Shape, formatShape(info.Shape), i, d)
		}
	}
	return nil
}

// formatShape writes a signature shape with "?" for unknown dimensions.
func formatShape(s []int64) string {
	if s == nil {
		return "<unknown rank>"
	}
	parts := make([]string, len(s))
	for i, d := range s {
		if d < 0 {
			parts[i] = "?"
		} else {
			parts[i] = strconv.FormatInt(d, 10)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func keys(infos []TensorInfo) string {
	ks := make([]string, len(infos))
	for i, in := range infos {
		ks[i] = in.Key
	}
	return strings.Join(ks, ", ")
}
