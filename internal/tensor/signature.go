package tensor

import (
	"fmt"
	"strconv"
	"strings"
)

// Signature is one of a model's serving signatures, with its inputs and outputs
// sorted by key.
type Signature struct {
	Name    string
	Inputs  []Info
	Outputs []Info
}

// Info describes a signature input or output.
type Info struct {
	// Key is the signature's key for the tensor, such as "images".
	Key   string
	DType DType
	// Shape has -1 for a dimension of unknown size (usually the batch) and is nil
	// when even the rank is unknown. A scalar has an empty, non-nil Shape.
	Shape []int64
}

// Input returns the input with the given key.
func (s Signature) Input(key string) (Info, bool) { return find(s.Inputs, key) }

// Output returns the output with the given key.
func (s Signature) Output(key string) (Info, bool) { return find(s.Outputs, key) }

func find(list []Info, key string) (Info, bool) {
	for _, t := range list {
		if t.Key == key {
			return t, true
		}
	}
	return Info{}, false
}

// Check reports whether t fits info: well formed, same dtype, same rank, same known
// dimensions. Its errors wrap ErrBadInput and name the input.
func (info Info) Check(t *Tensor) error {
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
			ErrBadInput, info.Key, t.Shape, len(t.Shape), FormatShape(info.Shape), len(info.Shape))
	}
	for i, d := range info.Shape {
		if d >= 0 && t.Shape[i] != d {
			return fmt.Errorf("%w: input %q: got shape %v, want %v (dimension %d must be %d)",
				ErrBadInput, info.Key, t.Shape, FormatShape(info.Shape), i, d)
		}
	}
	return nil
}

// FormatShape writes a signature shape with "?" for unknown dimensions.
func FormatShape(s []int64) string {
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

// Keys lists the infos' keys, comma-separated, for error messages.
func Keys(infos []Info) string {
	ks := make([]string, len(infos))
	for i, in := range infos {
		ks[i] = in.Key
	}
	return strings.Join(ks, ", ")
}
