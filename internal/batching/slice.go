package batching

import (
	"fmt"

	"github.com/atelier-vision/atelier/internal/tensor"
)

// slice returns rows [offset, offset+n) of every output whose leading dimension is the
// batch's row count.
func slice(out map[string]*tensor.Tensor, offset, n, total int) (map[string]*tensor.Tensor, error) {
	part := make(map[string]*tensor.Tensor, len(out))
	for key, t := range out {
		if len(t.Shape) == 0 || int(t.Shape[0]) != total {
			return nil, fmt.Errorf("batching: output %q has shape %v, want a leading batch dimension of %d", key, t.Shape, total)
		}
		per := 1
		for _, d := range t.Shape[1:] {
			per *= int(d)
		}
		lo, hi := offset*per, (offset+n)*per
		p := &tensor.Tensor{DType: t.DType, Shape: append([]int64{int64(n)}, t.Shape[1:]...)}
		switch {
		case t.Uint8 != nil:
			p.Uint8 = t.Uint8[lo:hi:hi]
		case t.Float32 != nil:
			p.Float32 = t.Float32[lo:hi:hi]
		case t.Int32 != nil:
			p.Int32 = t.Int32[lo:hi:hi]
		case t.Int64 != nil:
			p.Int64 = t.Int64[lo:hi:hi]
		default:
			return nil, fmt.Errorf("batching: output %q has dtype %s, which cannot be split", key, t.DType)
		}
		part[key] = p
	}
	return part, nil
}
