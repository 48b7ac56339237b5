package tf

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/atelier-vision/atelier/internal/tensor"
	tfb "github.com/galeone/tensorflow/tensorflow/go"
)

// signature is a tensor.Signature with its keys resolved to graph outputs.
type signature struct {
	tensor.Signature
	in, out map[string]tfb.Output
}

// newSignature resolves a signature read by the bindings against the graph.
func newSignature(g *tfb.Graph, name string, s tfb.Signature) (*signature, error) {
	sig := &signature{Signature: tensor.Signature{Name: name}, in: map[string]tfb.Output{}, out: map[string]tfb.Output{}}
	var err error
	if sig.Inputs, err = tensorInfos(g, s.Inputs, sig.in, true); err != nil {
		return nil, fmt.Errorf("signature %q: %w", name, err)
	}
	if sig.Outputs, err = tensorInfos(g, s.Outputs, sig.out, false); err != nil {
		return nil, fmt.Errorf("signature %q: %w", name, err)
	}
	return sig, nil
}

func tensorInfos(g *tfb.Graph, m map[string]tfb.TensorInfo, outs map[string]tfb.Output, inputs bool) ([]tensor.Info, error) {
	infos := make([]tensor.Info, 0, len(m))
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
		infos = append(infos, tensor.Info{Key: key, DType: dtypeOf(ti.DType), Shape: shape})
	}
	slices.SortFunc(infos, func(a, b tensor.Info) int { return strings.Compare(a.Key, b.Key) })
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
