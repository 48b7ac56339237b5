package batching

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/tensor"
)

// closeOrderModel is fakeModel that fails any run that starts after its Close: the
// TensorFlow session underneath is deleted by Close, so such a run would be a use
// after free there.
type closeOrderModel struct{ *fakeModel }

func (m closeOrderModel) Run(ctx context.Context, sig string, in map[string]*tensor.Tensor, outs []string) (map[string]*tensor.Tensor, error) {
	if m.closed.Load() {
		return nil, errors.New("run on a closed model")
	}
	return m.fakeModel.Run(ctx, sig, in, outs)
}

// TestCloseAnswersQueuedCallsFirst closes the engine while one batch runs and calls
// wait behind it (the version is being unloaded). Close must wait for the run
// in flight and answer every queued call from the model, the model must be closed
// only after its last run, and calls that come after Close are refused with
// tensor.ErrClosed, of kind Unavailable (a retry lands on whatever version serves).
func TestCloseAnswersQueuedCallsFirst(t *testing.T) {
	fake := &fakeModel{hold: make(chan struct{}), started: make(chan struct{}, 256)}
	e, err := New(closeOrderModel{fake}, Config{MaxBatch: 4, MaxDelay: time.Millisecond, QueueSize: 256, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	defer fake.release()
	var wg sync.WaitGroup
	wg.Go(func() { e.Run(context.Background(), "s", input(1, 4, 0), []string{"y"}) })
	<-fake.started
	const queued = 30
	errs := make(chan error, queued)
	for i := range queued {
		wg.Go(func() {
			base := float32(1000 * (i + 1))
			out, err := e.Run(context.Background(), "s", input(1+i%2, 4, base), []string{"y"})
			if err != nil {
				errs <- fmt.Errorf("queued call %d: %w", i, err)
				return
			}
			for j, v := range out["y"].Float32 {
				if want := 2*(base+float32(j)) + 1; v != want {
					errs <- fmt.Errorf("queued call %d: y[%d] = %v, want %v", i, j, v, want)
					return
				}
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.Waiting() < queued {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", e.Waiting(), queued)
		}
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error)
	go func() { closed <- e.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while a batch was still running")
	case <-time.After(50 * time.Millisecond):
	}
	if fake.closed.Load() {
		t.Fatal("the model was closed while a batch was still running")
	}
	_, err = e.Run(context.Background(), "s", input(1, 4, 0), []string{"y"})
	if !errors.Is(err, tensor.ErrClosed) || !errors.Is(err, errkind.Unavailable) {
		t.Errorf("Run during Close: got %v, want ErrClosed (Unavailable)", err)
	}
	fake.release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !fake.closed.Load() {
		t.Fatal("Close did not close the model")
	}
	if got, want := fake.rows.Load(), int64(1+queued/2*3); got != want {
		t.Fatalf("the model ran %d rows, want %d (every call answered by it)", got, want)
	}
}
