package tf

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/atelier-vision/atelier/internal/tensor"
	tfb "github.com/galeone/tensorflow/tensorflow/go"
)

// Run feeds inputs, keyed by the signature's input keys, to the named signature and
// returns the requested outputs keyed by output key; nil outputs means all of them.
// Every input the signature declares must be given, with its dtype, rank and known
// dimensions; a mismatch, an unknown signature or an unknown key is an error wrapping
// tensor.ErrBadInput and nothing runs, and so is TensorFlow's INVALID_ARGUMENT (say, inputs
// whose batch sizes disagree). A done ctx is returned as ctx.Err() before running;
// a run that has started cannot be interrupted. Inputs are copied, not kept.
func (m *Model) Run(ctx context.Context, signature string, inputs map[string]*tensor.Tensor, outputs []string) (map[string]*tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res, err := m.run(signature, inputs, outputs)
	if err != nil {
		return nil, fmt.Errorf("tf: run %s signature %q: %w", m.dir, signature, err)
	}
	return res, nil
}

func (m *Model) run(signature string, inputs map[string]*tensor.Tensor, outputs []string) (res map[string]*tensor.Tensor, err error) {
	if m.closed.Load() {
		return nil, fmt.Errorf("model %w", tensor.ErrClosed)
	}
	sig, ok := m.sigs[signature]
	if !ok {
		names := make([]string, len(m.list))
		for i, s := range m.list {
			names[i] = s.Name
		}
		return nil, fmt.Errorf("%w: no such signature (signatures: %s)", tensor.ErrBadInput, strings.Join(names, ", "))
	}
	if err := sig.checkInputs(inputs); err != nil {
		return nil, err
	}
	fetches, outputs, err := sig.fetches(outputs)
	if err != nil {
		return nil, err
	}

	defer recoverTo(&err, "")
	feeds := make(map[tfb.Output]*tfb.Tensor, len(inputs))
	defer func() {
		for _, t := range feeds {
			freeTensor(t)
		}
	}()
	for key, t := range inputs {
		ft, err := toTF(t)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", key, err)
		}
		feeds[sig.in[key]] = ft
	}
	var got []*tfb.Tensor
	callerCPU.Add(int64(withoutProfSignal(func() { got, err = m.sess.Run(feeds, fetches, nil) })))
	defer freeTensors(got)
	switch {
	case err != nil && m.closed.Load():
		return nil, fmt.Errorf("model %w", tensor.ErrClosed)
	case err != nil && invalidArgument(err):
		return nil, fmt.Errorf("%w: %w", tensor.ErrBadInput, err)
	case err != nil:
		return nil, err
	}
	res = make(map[string]*tensor.Tensor, len(got))
	for i, t := range got {
		if res[outputs[i]], err = fromTF(t); err != nil {
			return nil, fmt.Errorf("output %q: %w", outputs[i], err)
		}
	}
	return res, nil
}

// checkInputs checks that inputs holds exactly the signature's inputs, each fitting.
func (s *signature) checkInputs(inputs map[string]*tensor.Tensor) error {
	for key := range inputs {
		if _, ok := s.in[key]; !ok {
			return fmt.Errorf("%w: unknown input %q (inputs: %s)", tensor.ErrBadInput, key, tensor.Keys(s.Inputs))
		}
	}
	for _, info := range s.Inputs {
		t, ok := inputs[info.Key]
		if !ok {
			return fmt.Errorf("%w: missing input %q (inputs: %s)", tensor.ErrBadInput, info.Key, tensor.Keys(s.Inputs))
		}
		if err := info.Check(t); err != nil {
			return err
		}
	}
	return nil
}

// fetches resolves output keys (nil: all, sorted) to graph outputs.
func (s *signature) fetches(outputs []string) ([]tfb.Output, []string, error) {
	if outputs == nil {
		outputs = make([]string, len(s.Outputs))
		for i, o := range s.Outputs {
			outputs[i] = o.Key
		}
	}
	fetches := make([]tfb.Output, len(outputs))
	for i, key := range outputs {
		out, ok := s.out[key]
		if !ok {
			return nil, nil, fmt.Errorf("%w: unknown output %q (outputs: %s)", tensor.ErrBadInput, key, tensor.Keys(s.Outputs))
		}
		if slices.Contains(outputs[:i], key) {
			return nil, nil, fmt.Errorf("%w: output %q requested twice", tensor.ErrBadInput, key)
		}
		fetches[i] = out
	}
	return fetches, outputs, nil
}
