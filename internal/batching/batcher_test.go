package batching

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/tensor"
)

// fakeModel answers out[i] = 2*in[i] + 1 per element, records batch sizes, and can be
// held to build up a queue.
type fakeModel struct {
	mu      sync.Mutex
	batches []int
	rows    atomic.Int64
	hold    chan struct{} // when non-nil, Run waits for it to close
	freed   sync.Once
	started chan struct{} // receives once per Run start, if non-nil
	closed  atomic.Bool
}

func (f *fakeModel) Run(ctx context.Context, sig string, in map[string]*tensor.Tensor, outs []string) (map[string]*tensor.Tensor, error) {
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.hold != nil {
		<-f.hold
	}
	x := in["x"]
	f.mu.Lock()
	f.batches = append(f.batches, int(x.Shape[0]))
	f.mu.Unlock()
	f.rows.Add(x.Shape[0])
	y := make([]float32, len(x.Float32))
	for i, v := range x.Float32 {
		y[i] = 2*v + 1
	}
	return map[string]*tensor.Tensor{"y": {DType: tensor.Float32, Shape: x.Shape, Float32: y}}, nil
}

// release lets held runs go on. Tests defer it after deferring the engine's Close, so
// a failed check does not leave Close waiting for a run that is never let go.
func (f *fakeModel) release() { f.freed.Do(func() { close(f.hold) }) }

func (f *fakeModel) Close() error { f.closed.Store(true); return nil }

func input(rows, width int, base float32) map[string]*tensor.Tensor {
	data := make([]float32, rows*width)
	for i := range data {
		data[i] = base + float32(i)
	}
	return map[string]*tensor.Tensor{"x": {DType: tensor.Float32, Shape: []int64{int64(rows), int64(width)}, Float32: data}}
}

func TestNoCrossTalkUnderConcurrency(t *testing.T) {
	fake := &fakeModel{}
	e, err := New(fake, Config{MaxBatch: 16, MaxDelay: time.Millisecond, QueueSize: 1024, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const callers = 400
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows := 1 + i%3
			in := input(rows, 4, float32(i*1000))
			out, err := e.Run(context.Background(), "serving_default", in, []string{"y"})
			if err != nil {
				errs <- err
				return
			}
			y := out["y"]
			if int(y.Shape[0]) != rows || len(y.Float32) != rows*4 {
				errs <- fmt.Errorf("caller %d: got shape %v, want [%d 4]", i, y.Shape, rows)
				return
			}
			for k, v := range y.Float32 {
				if want := 2*in["x"].Float32[k] + 1; v != want {
					errs <- fmt.Errorf("caller %d element %d: got %v, want %v", i, k, v, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c := e.Stats().Snapshot()
	runs, rows := c.Runs, c.Rows
	if runs >= callers {
		t.Fatalf("got %d runs for %d callers, want batching to merge calls", runs, callers)
	}
	for _, b := range fake.batches {
		if b > 16 {
			t.Fatalf("got a batch of %d rows, want at most 16", b)
		}
	}
	t.Logf("%d callers, %d rows, %d session runs", callers, rows, runs)
}

func TestQueueFullRefusesAtOnce(t *testing.T) {
	fake := &fakeModel{hold: make(chan struct{}), started: make(chan struct{}, 10)}
	e, err := New(fake, Config{MaxBatch: 1 << 10, MaxDelay: 0, QueueSize: 2, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	defer fake.release()
	var wg sync.WaitGroup
	run := func() {
		defer wg.Done()
		e.Run(context.Background(), "s", input(1, 1, 0), []string{"y"})
	}
	wg.Add(1)
	go run()
	<-fake.started // the worker is busy with the first call; its slot is released
	wg.Add(2)
	go run()
	go run()
	deadline := time.Now().Add(5 * time.Second)
	for e.slots.waiting() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	_, err = e.Run(context.Background(), "s", input(1, 1, 0), []string{"y"})
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("got %v, want ErrQueueFull", err)
	}
	if waited := time.Since(start); waited > 100*time.Millisecond {
		t.Fatalf("refusal took %v, want it at once", waited)
	}
	fake.release()
	wg.Wait()
}

func TestExpiredCallIsNeverComputed(t *testing.T) {
	fake := &fakeModel{hold: make(chan struct{}), started: make(chan struct{}, 10)}
	e, err := New(fake, Config{MaxBatch: 8, MaxDelay: 0, QueueSize: 8, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	defer fake.release()
	go e.Run(context.Background(), "s", input(1, 1, 0), []string{"y"})
	<-fake.started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = e.Run(ctx, "s", input(3, 1, 0), []string{"y"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	fake.release()
	// A later call flushes the queue; the expired call's 3 rows must not be computed.
	if _, err := e.Run(context.Background(), "s", input(1, 1, 0), []string{"y"}); err != nil {
		t.Fatal(err)
	}
	if got := fake.rows.Load(); got != 2 {
		t.Fatalf("got %d rows computed, want 2 (the expired call's 3 rows skipped)", got)
	}
	if expired := e.Stats().Snapshot().Expired; expired != 1 {
		t.Fatalf("got %d expired, want 1", expired)
	}
}

func TestAlreadyCancelledReturnsAtOnce(t *testing.T) {
	fake := &fakeModel{}
	e, _ := New(fake, DefaultConfig)
	defer e.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Run(ctx, "s", input(1, 1, 0), []string{"y"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want Canceled", err)
	}
	if fake.rows.Load() != 0 {
		t.Fatal("a cancelled call was computed")
	}
}

func TestCloseClosesModel(t *testing.T) {
	fake := &fakeModel{}
	e, _ := New(fake, DefaultConfig)
	if _, err := e.Run(context.Background(), "s", input(2, 2, 0), []string{"y"}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if !fake.closed.Load() {
		t.Fatal("Close did not close the model")
	}
	if _, err := e.Run(context.Background(), "other", input(1, 1, 0), []string{"y"}); !errors.Is(err, tensor.ErrClosed) {
		t.Fatalf("Run after Close: got %v, want ErrClosed", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"default", DefaultConfig, true},
		{"zero batch", Config{MaxBatch: 0, QueueSize: 1, Workers: 1}, false},
		{"zero queue", Config{MaxBatch: 1, QueueSize: 0, Workers: 1}, false},
		{"zero workers", Config{MaxBatch: 1, QueueSize: 1, Workers: 0}, false},
		{"negative delay", Config{MaxBatch: 1, QueueSize: 1, Workers: 1, MaxDelay: -1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("got %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestQueueAndComputeTime holds the model in a run while two calls queue behind it:
// the queue depth counts them, and the engine's times split their wait from the run.
func TestQueueAndComputeTime(t *testing.T) {
	fake := &fakeModel{hold: make(chan struct{}), started: make(chan struct{}, 10)}
	e, err := New(fake, Config{MaxBatch: 2, MaxDelay: 0, QueueSize: 8, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	defer fake.release()
	var wg sync.WaitGroup
	call := func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.Run(context.Background(), "s", input(1, 1, 0), []string{"y"})
		}()
	}
	call()
	<-fake.started // the first call runs alone and is held
	call()         // the next two queue behind it
	call()
	for deadline := time.Now().Add(5 * time.Second); e.Waiting() != 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("got %d calls waiting, want 2", e.Waiting())
		}
	}
	const held = 30 * time.Millisecond
	time.Sleep(held)
	fake.release()
	wg.Wait()
	if n := e.Waiting(); n != 0 {
		t.Fatalf("got %d calls waiting after all were answered, want 0", n)
	}
	c := e.Stats().Snapshot()
	queued, computed := c.Queued, c.Computed
	if computed < held || queued < 2*held {
		t.Fatalf("got %v queued and %v computed; want the two waiting calls' %v each queued and the held run's %v computed",
			queued, computed, held, held)
	}
}

func TestSizesHistogram(t *testing.T) {
	var s Stats
	for _, rows := range []int64{1, 1, 2, 3, 32, 33, 2000} {
		s.record(Counts{Runs: 1, Rows: rows})
	}
	s.record(Counts{Expired: 4, Refused: 1}) // expired and refused calls are no runs
	c := s.Snapshot()
	// le 1, 2, 4, 8, 16, 32, 64, ..., 1024, +Inf
	want := [len(SizeBuckets) + 1]int64{2, 3, 4, 4, 4, 5, 6, 6, 6, 6, 6, 7}
	if c.Sizes != want || c.Rows != 2072 || c.Runs != 7 || c.Expired != 4 || c.Refused != 1 {
		t.Fatalf("Snapshot() = %+v; want sizes %v, 7 runs of 2072 rows, 4 expired, 1 refused", c, want)
	}
}

// failingModel fails every run after the first ok ones.
type failingModel struct {
	fakeModel
	ok atomic.Int64
}

func (f *failingModel) Run(ctx context.Context, sig string, in map[string]*tensor.Tensor, outs []string) (map[string]*tensor.Tensor, error) {
	if f.ok.Add(-1) < 0 {
		return nil, errors.New("the session run failed")
	}
	return f.fakeModel.Run(ctx, sig, in, outs)
}

// TestFailedCallsAreCounted: every call a failed run answers with its error counts as
// failed, and the figures are in place by the time the caller has its answer.
func TestFailedCallsAreCounted(t *testing.T) {
	fake := &failingModel{}
	fake.ok.Store(2)
	e, err := New(fake, Config{MaxBatch: 8, MaxDelay: 0, QueueSize: 8, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for i, wantErr := range []bool{false, false, true, true, true} {
		_, err := e.Run(context.Background(), "s", input(2, 1, 0), []string{"y"})
		if (err != nil) != wantErr {
			t.Fatalf("call %d: got %v, want an error: %v", i, err, wantErr)
		}
		c := e.Stats().Snapshot()
		wantFailed := max(0, int64(i)-1)
		if c.Failed != wantFailed || c.Runs != int64(i+1) || c.Rows != int64(2*(i+1)) {
			t.Fatalf("after call %d: got %d failed in %d runs of %d rows, want %d failed in %d runs of %d rows",
				i, c.Failed, c.Runs, c.Rows, wantFailed, i+1, 2*(i+1))
		}
	}
}
