package precision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/atelier-vision/atelier/internal/tensor"
)

// Split runs one model in two sessions: batches of fewer than MinBatch rows on FP32,
// the rest on BF16. bf16 pays on large batches, but on a small model its conversions
// can outweigh the arithmetic it saves on a single image (the embedded 28x28
// classifier runs one image at half the fp32 speed in bf16, and a batch of 32 at 1.3x);
// Calibrate finds MinBatch on the CPU at hand.
type Split struct {
	FP32, BF16 tensor.Engine
	MinBatch   int
}

// Run sends the call to the session for its batch size: the leading dimension of its
// inputs (BF16 when they have none).
func (s *Split) Run(ctx context.Context, signature string, inputs map[string]*tensor.Tensor, outputs []string) (map[string]*tensor.Tensor, error) {
	if rows := batchRows(inputs); rows >= 0 && rows < s.MinBatch {
		return s.FP32.Run(ctx, signature, inputs, outputs)
	}
	return s.BF16.Run(ctx, signature, inputs, outputs)
}

// Close closes both sessions.
func (s *Split) Close() error { return errors.Join(s.FP32.Close(), s.BF16.Close()) }

func batchRows(inputs map[string]*tensor.Tensor) int {
	for _, t := range inputs {
		if t != nil && len(t.Shape) > 0 {
			return int(t.Shape[0])
		}
	}
	return -1
}

// Timing is what Calibrate measured at one batch size: the fastest of its runs in
// each precision.
type Timing struct {
	Batch      int
	FP32, BF16 time.Duration
}

// Calibration is Calibrate's answer.
type Calibration struct {
	// MinBatch is the smallest batch size from which bf16 is faster: 1 means at every
	// size measured, 0 at none.
	MinBatch int
	Timings  []Timing
}

// String sums the calibration up for a log line: "bf16 from batch 8 (b1 0.51x, b2
// 0.74x, b4 0.93x, b8 1.12x, b16 1.25x)", with bf16's speed-up over fp32 per size.
func (c Calibration) String() string {
	var b strings.Builder
	switch c.MinBatch {
	case 0:
		b.WriteString("fp32 at every batch size measured")
	case 1:
		b.WriteString("bf16 at every batch size measured")
	default:
		fmt.Fprintf(&b, "bf16 from batch %d, fp32 below", c.MinBatch)
	}
	b.WriteString(" (bf16 speed-up:")
	for _, t := range c.Timings {
		fmt.Fprintf(&b, " b%d %.2fx", t.Batch, t.Speedup())
	}
	b.WriteString(")")
	return b.String()
}

// Speedup is how many times faster bf16 ran than fp32.
func (t Timing) Speedup() float64 {
	if t.BF16 <= 0 {
		return 0
	}
	return float64(t.FP32) / float64(t.BF16)
}

// Calibration settings: each size runs once unmeasured (a session's first run at a
// shape sets kernels up), then Rounds times in each precision, alternating, and the
// fastest run counts. bf16 must be MinSpeedup times as fast to be chosen: fp32 is the
// exact one, and a tie is noise. Sweeping stops once bf16 has won at two sizes in a
// row, or after calibrationBudget; the sizes not measured are taken to go the way of
// the last one that was.
const (
	calibrationRounds = 3
	minSpeedup        = 1.05
	calibrationBudget = 30 * time.Second
)

// Calibrate times fp32 and bf16 on zero-filled batches of the signature's inputs at
// each of sizes (ascending) and returns the smallest size from which bf16 is at least
// 5% faster at that size and every larger one measured. It runs real sessions, so
// call it while the model takes no traffic; now is the clock (time.Now outside tests).
func Calibrate(ctx context.Context, fp32, bf16 tensor.Engine, sig tensor.Signature, sizes []int, now func() time.Time) (Calibration, error) {
	var c Calibration
	start := now()
	wins := 0
	for _, n := range sizes {
		inputs, err := zeroInputs(sig, n)
		if err != nil {
			return c, err
		}
		t := Timing{Batch: n}
		for _, e := range []tensor.Engine{fp32, bf16} {
			if _, err := e.Run(ctx, sig.Name, inputs, nil); err != nil {
				return c, fmt.Errorf("batch %d: %w", n, err)
			}
		}
		for range calibrationRounds {
			for _, side := range []struct {
				e    tensor.Engine
				best *time.Duration
			}{{fp32, &t.FP32}, {bf16, &t.BF16}} {
				began := now()
				if _, err := side.e.Run(ctx, sig.Name, inputs, nil); err != nil {
					return c, fmt.Errorf("batch %d: %w", n, err)
				}
				if d := now().Sub(began); *side.best == 0 || d < *side.best {
					*side.best = d
				}
			}
		}
		c.Timings = append(c.Timings, t)
		if t.Speedup() >= minSpeedup {
			if wins++; c.MinBatch == 0 {
				c.MinBatch = n
			}
		} else {
			wins, c.MinBatch = 0, 0
		}
		if wins == 2 || now().Sub(start) > calibrationBudget {
			break
		}
	}
	return c, nil
}

// zeroInputs returns a batch of n zero-filled rows for every input of sig.
func zeroInputs(sig tensor.Signature, n int) (map[string]*tensor.Tensor, error) {
	inputs := make(map[string]*tensor.Tensor, len(sig.Inputs))
	for _, in := range sig.Inputs {
		if len(in.Shape) == 0 {
			return nil, fmt.Errorf("input %q has no batch dimension", in.Key)
		}
		shape := append([]int64{int64(n)}, in.Shape[1:]...)
		size := 1
		for _, d := range shape {
			if d < 0 {
				return nil, fmt.Errorf("input %q has shape %v: only the batch dimension may be unknown", in.Key, in.Shape)
			}
			size *= int(d)
		}
		var err error
		switch in.DType {
		case tensor.Uint8:
			inputs[in.Key], err = tensor.NewUint8(shape, make([]uint8, size))
		case tensor.Float32:
			inputs[in.Key], err = tensor.NewFloat32(shape, make([]float32, size))
		case tensor.Int32:
			inputs[in.Key], err = tensor.NewInt32(shape, make([]int32, size))
		case tensor.Int64:
			inputs[in.Key], err = tensor.NewInt64(shape, make([]int64, size))
		default:
			err = fmt.Errorf("input %q has dtype %s", in.Key, in.DType)
		}
		if err != nil {
			return nil, err
		}
	}
	return inputs, nil
}
