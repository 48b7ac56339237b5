package precision

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/tensor"
)

// clockEngine is a session whose runs take cost(rows) on a fake clock.
type clockEngine struct {
	clock  *time.Time
	cost   func(rows int) time.Duration
	rows   []int
	closed bool
}

func (e *clockEngine) Run(_ context.Context, _ string, inputs map[string]*tensor.Tensor, _ []string) (map[string]*tensor.Tensor, error) {
	rows := batchRows(inputs)
	e.rows = append(e.rows, rows)
	*e.clock = e.clock.Add(e.cost(rows))
	return map[string]*tensor.Tensor{}, nil
}

func (e *clockEngine) Close() error { e.closed = true; return nil }

var sig = tensor.Signature{Name: "serving_default", Inputs: []tensor.Info{
	{Key: "images", DType: tensor.Uint8, Shape: []int64{-1, 28, 28, 1}},
	{Key: "class", DType: tensor.Int32, Shape: []int64{-1}},
}}

// perImage returns a cost of fixed + rows*each microseconds.
func perImage(fixed, each int) func(int) time.Duration {
	return func(rows int) time.Duration { return time.Duration(fixed+rows*each) * time.Microsecond }
}

func TestCalibrate(t *testing.T) {
	sizes := []int{1, 2, 4, 8, 16, 32}
	for _, tc := range []struct {
		name      string
		fp32      func(int) time.Duration
		bf16      func(int) time.Duration
		want      int
		wantSizes int
	}{
		// Large model: bf16 wins from the first size; two wins end the sweep.
		{"bf16 everywhere", perImage(0, 200), perImage(0, 110), 1, 2},
		// Small model: bf16's fixed cost loses on small batches (2000+250n vs 500+330n
		// crosses at n = 18.75).
		{"crossover", perImage(500, 330), perImage(2000, 250), 32, 6},
		{"never", perImage(100, 100), perImage(200, 100), 0, 6},
		// Within 5% is a tie, and a tie keeps fp32.
		{"tie", perImage(0, 100), perImage(0, 97), 0, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := time.Unix(0, 0)
			fp32 := &clockEngine{clock: &clock, cost: tc.fp32}
			bf16 := &clockEngine{clock: &clock, cost: tc.bf16}
			c, err := Calibrate(context.Background(), fp32, bf16, sig, sizes, func() time.Time { return clock })
			if err != nil {
				t.Fatal(err)
			}
			if c.MinBatch != tc.want || len(c.Timings) != tc.wantSizes {
				t.Fatalf("MinBatch %d after %d sizes, want %d after %d: %s", c.MinBatch, len(c.Timings), tc.want, tc.wantSizes, c)
			}
			// Each size: one unmeasured run and calibrationRounds measured ones per engine.
			if got, want := len(fp32.rows), tc.wantSizes*(1+calibrationRounds); got != want || len(bf16.rows) != want {
				t.Fatalf("%d fp32 and %d bf16 runs, want %d each", got, len(bf16.rows), want)
			}
			if got, want := c.Timings[0].FP32, tc.fp32(1); got != want {
				t.Fatalf("batch 1 fp32 timed %v, want %v", got, want)
			}
		})
	}
}

func TestCalibrateKeepsCrossoverOnlyIfBF16KeepsWinning(t *testing.T) {
	// bf16 wins at 2, loses at 4 (a noisy run), wins from 8 on.
	clock := time.Unix(0, 0)
	fp32 := &clockEngine{clock: &clock, cost: perImage(0, 100)}
	bf16 := &clockEngine{clock: &clock, cost: func(rows int) time.Duration {
		if rows == 1 || rows == 4 {
			return time.Duration(rows*120) * time.Microsecond
		}
		return time.Duration(rows*50) * time.Microsecond
	}}
	c, err := Calibrate(context.Background(), fp32, bf16, sig, []int{1, 2, 4, 8, 16, 32}, func() time.Time { return clock })
	if err != nil {
		t.Fatal(err)
	}
	if c.MinBatch != 8 || len(c.Timings) != 5 {
		t.Fatalf("got %s after %d sizes, want bf16 from batch 8 after 5", c, len(c.Timings))
	}
	if s := c.String(); !strings.HasPrefix(s, "bf16 from batch 8, fp32 below (bf16 speed-up: b1 0.83x b2 2.00x b4 0.83x") {
		t.Fatalf("summary %q", s)
	}
}

func TestCalibrateStopsAtBudget(t *testing.T) {
	clock := time.Unix(0, 0)
	slow := func(int) time.Duration { return 4 * time.Second } // 8 runs per size: 32 s
	fp32 := &clockEngine{clock: &clock, cost: slow}
	bf16 := &clockEngine{clock: &clock, cost: slow}
	c, err := Calibrate(context.Background(), fp32, bf16, sig, []int{1, 2, 4}, func() time.Time { return clock })
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Timings) != 1 || c.MinBatch != 0 {
		t.Fatalf("measured %d sizes (%s), want to stop after the first, past the budget", len(c.Timings), c)
	}
}

func TestCalibrateRefusesUnknownDimensions(t *testing.T) {
	clock := time.Unix(0, 0)
	e := &clockEngine{clock: &clock, cost: perImage(0, 1)}
	bad := tensor.Signature{Name: "s", Inputs: []tensor.Info{{Key: "images", DType: tensor.Uint8, Shape: []int64{-1, -1, -1, 3}}}}
	if _, err := Calibrate(context.Background(), e, e, bad, []int{1}, time.Now); err == nil || !strings.Contains(err.Error(), "only the batch dimension") {
		t.Fatalf("err = %v, want a complaint about the unknown dimensions", err)
	}
	if len(e.rows) != 0 {
		t.Fatal("ran a session on inputs it could not build")
	}
}

func TestSplitRoutesByBatchSize(t *testing.T) {
	clock := time.Unix(0, 0)
	fp32 := &clockEngine{clock: &clock, cost: perImage(0, 1)}
	bf16 := &clockEngine{clock: &clock, cost: perImage(0, 1)}
	s := &Split{FP32: fp32, BF16: bf16, MinBatch: 8}
	for _, n := range []int{1, 7, 8, 32} {
		in, err := zeroInputs(sig, n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Run(context.Background(), sig.Name, in, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Run(context.Background(), sig.Name, nil, nil); err != nil { // no inputs: bf16
		t.Fatal(err)
	}
	if want := []int{1, 7}; !slices.Equal(fp32.rows, want) {
		t.Fatalf("fp32 ran %v, want %v", fp32.rows, want)
	}
	if want := []int{8, 32, -1}; !slices.Equal(bf16.rows, want) {
		t.Fatalf("bf16 ran %v, want %v", bf16.rows, want)
	}
	if err := s.Close(); err != nil || !fp32.closed || !bf16.closed {
		t.Fatalf("Close: %v; closed fp32 %v, bf16 %v", err, fp32.closed, bf16.closed)
	}
}
