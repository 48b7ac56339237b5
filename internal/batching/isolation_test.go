package batching

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/tensor"
)

// checkingModel refuses malformed inputs as the TensorFlow engine does (tf.Model.Run
// validates every input) before answering as fakeModel.
type checkingModel struct{ *fakeModel }

func (m checkingModel) Run(ctx context.Context, sig string, in map[string]*tensor.Tensor, outs []string) (map[string]*tensor.Tensor, error) {
	for k, t := range in {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("input %q: %w", k, err)
		}
	}
	return m.fakeModel.Run(ctx, sig, in, outs)
}

// malformed is one row of width 4 holding n elements.
func malformed(n int, base float32) map[string]*tensor.Tensor {
	in := input(1, 4, base)
	x := in["x"]
	x.Float32 = make([]float32, n)
	for i := range x.Float32 {
		x.Float32[i] = base + float32(i)
	}
	return in
}

// TestMalformedCallIsJudgedAlone queues well-formed calls with malformed ones (a
// shape that promises more or fewer elements than the call holds) so that they would
// share a batch. Stacked, one malformed call failed its whole batch, and two whose
// counts made up for each other passed the stacked batch's check and shifted each
// other's rows: a call was answered on another call's data. Each malformed call must
// get its own ErrBadInput, and every well-formed one its own answer.
func TestMalformedCallIsJudgedAlone(t *testing.T) {
	for _, bad := range [][]int{{3}, {3, 5}, {5, 3, 4 + 4}} {
		t.Run(fmt.Sprint(bad), func(t *testing.T) {
			fake := &fakeModel{hold: make(chan struct{}), started: make(chan struct{}, 64)}
			e, err := New(checkingModel{fake}, Config{MaxBatch: 16, MaxDelay: 50 * time.Millisecond, QueueSize: 64, Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			defer fake.release()
			// A first call holds the worker, so that the others queue up behind it and
			// are gathered into one batch.
			var wg sync.WaitGroup
			wg.Go(func() { e.Run(context.Background(), "s", input(1, 4, 0), []string{"y"}) })
			<-fake.started
			type answer struct {
				good bool
				base float32
				out  map[string]*tensor.Tensor
				err  error
			}
			var calls []map[string]*tensor.Tensor
			var good []bool
			for i, n := range bad {
				calls = append(calls, input(1, 4, float32(100*(2*i+1))))
				good = append(good, true)
				calls = append(calls, malformed(n, float32(100*(2*i+2))))
				good = append(good, false)
			}
			calls = append(calls, input(1, 4, 900))
			good = append(good, true)
			answers := make([]answer, len(calls))
			for i, in := range calls {
				wg.Go(func() {
					out, err := e.Run(context.Background(), "s", in, []string{"y"})
					answers[i] = answer{good: good[i], base: in["x"].Float32[0], out: out, err: err}
				})
			}
			deadline := time.Now().Add(10 * time.Second)
			// Malformed calls that are run alone do not queue: wait for the
			// well-formed ones (and, unfixed, the malformed ones too).
			for e.Waiting() < len(bad)+1 {
				if time.Now().After(deadline) {
					t.Fatalf("%d calls queued, want at least %d", e.Waiting(), len(bad)+1)
				}
				time.Sleep(time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond) // let any malformed call that queues join them
			fake.release()
			wg.Wait()
			for i, a := range answers {
				if !a.good {
					if !errors.Is(a.err, tensor.ErrBadInput) {
						t.Errorf("malformed call %d: got %v, %v; want ErrBadInput", i, a.out, a.err)
					}
					continue
				}
				if a.err != nil {
					t.Errorf("well-formed call %d failed beside a malformed one: %v", i, a.err)
					continue
				}
				y := a.out["y"]
				for j, v := range y.Float32 {
					if want := 2*(a.base+float32(j)) + 1; v != want {
						t.Errorf("well-formed call %d: y[%d] = %v, want %v (another call's rows)", i, j, v, want)
						break
					}
				}
			}
		})
	}
}

// valueCheckingModel refuses a batch in which any row starts with a negative value,
// as TensorFlow refuses a class index past a lookup table: a fault in the values, not
// the shapes, that only the session run finds.
type valueCheckingModel struct{ *fakeModel }

func (m valueCheckingModel) Run(ctx context.Context, sig string, in map[string]*tensor.Tensor, outs []string) (map[string]*tensor.Tensor, error) {
	x := in["x"]
	width := int(x.Shape[1])
	for r := 0; r < int(x.Shape[0]); r++ {
		if x.Float32[r*width] < 0 {
			m.fakeModel.mu.Lock()
			m.fakeModel.batches = append(m.fakeModel.batches, -int(x.Shape[0]))
			m.fakeModel.mu.Unlock()
			return nil, fmt.Errorf("row %d: value %v out of range: %w", r, x.Float32[r*width], tensor.ErrBadInput)
		}
	}
	return m.fakeModel.Run(ctx, sig, in, outs)
}

// TestBadValueFailsOnlyItsCall queues good calls with calls whose values the model
// refuses at run time, so that they share a batch. The batch's failure used to answer
// every call in it: one client's out-of-range class index failed 113 of 120 other
// clients' calls beside it. The bad calls must get the error and every good call its
// own answer, in runs split by halves (for one bad call, 9 runs at most).
func TestBadValueFailsOnlyItsCall(t *testing.T) {
	for _, badAt := range [][]int{{5}, {0, 15}, {3, 4, 9}} {
		t.Run(fmt.Sprint(badAt), func(t *testing.T) {
			fake := &fakeModel{hold: make(chan struct{}), started: make(chan struct{}, 64)}
			e, err := New(valueCheckingModel{fake}, Config{MaxBatch: 16, MaxDelay: 50 * time.Millisecond, QueueSize: 64, Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			defer fake.release()
			var wg sync.WaitGroup
			wg.Go(func() { e.Run(context.Background(), "s", input(1, 4, 0), []string{"y"}) })
			<-fake.started // the worker is held: the 16 calls below queue into one batch
			bad := map[int]bool{}
			for _, i := range badAt {
				bad[i] = true
			}
			outs := make([]map[string]*tensor.Tensor, 16)
			errs := make([]error, 16)
			bases := make([]float32, 16)
			for i := range 16 {
				bases[i] = float32(10 * (i + 1))
				if bad[i] {
					bases[i] = -bases[i]
				}
				wg.Go(func() { outs[i], errs[i] = e.Run(context.Background(), "s", input(1, 4, bases[i]), []string{"y"}) })
			}
			deadline := time.Now().Add(10 * time.Second)
			for e.Waiting() < 16 {
				if time.Now().After(deadline) {
					t.Fatalf("%d calls queued, want 16", e.Waiting())
				}
				time.Sleep(time.Millisecond)
			}
			fake.release()
			wg.Wait()
			for i := range 16 {
				if bad[i] {
					if !errors.Is(errs[i], tensor.ErrBadInput) {
						t.Errorf("bad call %d: got %v, want ErrBadInput", i, errs[i])
					}
					continue
				}
				if errs[i] != nil {
					t.Errorf("good call %d failed beside a bad one: %v", i, errs[i])
					continue
				}
				if got, want := outs[i]["y"].Float32[0], 2*bases[i]+1; got != want {
					t.Errorf("good call %d: y[0] = %v, want %v", i, got, want)
				}
			}
			fake.mu.Lock()
			runs := len(fake.batches) - 1 // the held first call's
			fake.mu.Unlock()
			// Halving finds each bad call in at most two runs a level, four levels down.
			if limit := 1 + 2*4*len(badAt); runs > limit || len(badAt) == 1 && runs >= 16 {
				t.Errorf("%d runs for 16 calls with %d bad, want at most %d", runs, len(badAt), min(limit, 15))
			}
			c := e.Stats().Snapshot()
			if c.Failed != int64(len(badAt)) {
				t.Errorf("Failed = %d, want %d (the bad calls only)", c.Failed, len(badAt))
			}
			if c.Runs != int64(runs+1) || c.Sizes[len(c.Sizes)-1] != c.Runs {
				t.Errorf("stats count %d runs (histogram %d), the model saw %d", c.Runs, c.Sizes[len(c.Sizes)-1], runs+1)
			}
		})
	}
}
