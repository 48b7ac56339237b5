package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/imageio"
)

// Frame is one received video frame.
type Frame struct {
	ID uint64
	// Captured is when the camera took the frame; zero means when it was received.
	Captured time.Time
	Image    imageio.Source
	// Err, when set, is why the frame could not be read; it is answered with this
	// error, in order, without being processed.
	Err error
}

// Result is the answer for one frame. Results are emitted in arrival order.
type Result[R any] struct {
	FrameID  uint64
	Captured time.Time
	// Value is the processed frame's result, when Err is nil and Skipped is false.
	Value R
	// Err is why the frame failed; the stream goes on.
	Err error
	// Skipped reports a frame evicted unprocessed under PolicyLatest.
	Skipped bool
}

// Process runs one frame through a model. It must give up when ctx is done. An error
// wrapped with Fatal ends the stream; any other error is the frame's result.
type Process[R any] func(ctx context.Context, f Frame) (R, Observation, error)

// Sink receives a session's output, always from one goroutine, in order. An error
// ends the session.
type Sink[R any] interface {
	Result(Result[R]) error
	Summary(Summary) error
	Alert(Alert) error
}

// fatalError marks a Process error that ends the stream (for example an unknown model).
type fatalError struct{ err error }

func (e fatalError) Error() string { return e.err.Error() }
func (e fatalError) Unwrap() error { return e.err }

// Fatal wraps err so that returning it from Process ends the stream with it.
func Fatal(err error) error { return fatalError{err} }

// Session is one camera's stream.
type Session[R any] struct {
	Options Options
	// Recv returns the next frame, io.EOF after the last one, or the error that ends
	// the stream (a broken connection, a protocol violation). It is called from one
	// goroutine and must return once the stream's transport is done.
	Recv    func() (Frame, error)
	Process Process[R]
	Sink    Sink[R]
	// Hub receives every alert too; nil keeps alerts on the stream.
	Hub *Hub

	// receiving owns the receive loop, which outlives Run until Recv returns.
	receiving sync.WaitGroup
}

// outcome is one frame's result on its way to the emitter.
type outcome[R any] struct {
	res   Result[R]
	obs   Observation
	fatal error
	token bool // the frame holds a pipeline token, returned when it is emitted
}

// errSessionEnded cancels a session's goroutines when Run returns.
var errSessionEnded = errors.New("stream session ended")

// Run serves the stream until the frames end and every one is answered (nil), ctx is
// done, Recv fails, Process returns a Fatal error or the Sink fails (that error). When
// it returns, every goroutine it started has exited except the receive loop, which
// exits as soon as Recv returns (for a gRPC stream, once the handler has returned);
// Wait waits for it. A panic in any of the session's goroutines ends the stream with
// that panic as its error; a panic in Process fails only its frame.
func (s *Session[R]) Run(ctx context.Context) error {
	opts := s.Options.WithDefaults()
	if err := opts.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel(errSessionEnded)
		wg.Wait()
	}()
	q := newQueue(opts.QueueSize, opts.Policy)
	s.receiving.Add(1)
	go func() {
		defer s.receiving.Done()
		if err := s.receive(ctx, q); err != nil {
			cancel(err)
		}
	}()
	pending := make(chan chan outcome[R], Depth+MaxPendingSkips) // items in arrival order
	free := make(chan struct{}, Depth)                           // a token per frame in the pipeline
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.dispatch(ctx, q, pending, free, &wg); err != nil {
			cancel(err)
		}
	}()
	return s.emit(ctx, opts, pending, free)
}

// Wait waits for the receive loop, which ends when Recv returns.
func (s *Session[R]) Wait() { s.receiving.Wait() }

// receive reads frames into the queue until the client's frames end (nil) or fail
// (the error that ends the stream).
func (s *Session[R]) receive(ctx context.Context, q *queue) (err error) {
	defer errkind.Recover(&err)
	for {
		f, err := s.Recv()
		if errors.Is(err, io.EOF) {
			q.close()
			return nil
		}
		if err != nil {
			return err
		}
		if now := time.Now(); f.Captured.IsZero() {
			f.Captured = now
		} else if f.Err == nil {
			f.Err = checkCaptured(f, now)
		}
		if q.push(ctx, f) != nil {
			return nil
		}
	}
}

// MaxCaptureAhead is how far past the server's clock a frame's capture time may be.
// Tallies slide with the newest capture time and cooldowns count from the last alert's,
// so one frame stamped in the future (a camera whose clock is wrong, or set to local
// time and sent as UTC) would leave every later frame out of the tally, and its rules
// quiet, until real time caught up. A few minutes cover clocks without NTP.
const MaxCaptureAhead = 5 * time.Minute

// checkCaptured refuses a capture time from the future or from before 1970 (tally
// buckets count nanoseconds since 1970 in 64 bits).
func checkCaptured(f Frame, now time.Time) error {
	switch {
	case f.Captured.Before(time.Unix(0, 0)):
		return fmt.Errorf("%w: frame %d: capture_time %s is before 1970", errkind.Invalid, f.ID, f.Captured.UTC().Format(time.RFC3339Nano))
	case f.Captured.Sub(now) > MaxCaptureAhead:
		return fmt.Errorf("%w: frame %d: capture_time %s is %v ahead of the server's clock, more than %v",
			errkind.Invalid, f.ID, f.Captured.UTC().Format(time.RFC3339Nano), f.Captured.Sub(now).Round(time.Second), MaxCaptureAhead)
	}
	return nil
}

// dispatch takes items from the queue in order and starts processing each frame once
// the pipeline has room (a token in free); each item's outcome arrives on its own
// slot, and the slots go to the emitter in arrival order. Skip reports need no token,
// so they never hold back the frames behind them.
func (s *Session[R]) dispatch(ctx context.Context, q *queue, pending chan<- chan outcome[R], free chan struct{}, wg *sync.WaitGroup) (err error) {
	defer close(pending)
	defer errkind.Recover(&err)
	for {
		select {
		case free <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		for taken := false; !taken; {
			it, ok := q.pop(ctx)
			if !ok {
				return nil
			}
			slot := make(chan outcome[R], 1)
			select {
			case pending <- slot:
			case <-ctx.Done():
				return nil
			}
			f := it.frame
			res := Result[R]{FrameID: f.ID, Captured: f.Captured, Skipped: it.skipped, Err: f.Err}
			switch {
			case it.skipped:
				slot <- outcome[R]{res: res}
			case f.Err != nil:
				slot <- outcome[R]{res: res, token: true}
				taken = true
			default:
				wg.Add(1)
				go func() {
					defer wg.Done()
					slot <- s.process(ctx, f, res)
				}()
				taken = true
			}
		}
	}
}

// process runs one frame and wraps what it gives; a panic fails the frame.
func (s *Session[R]) process(ctx context.Context, f Frame, res Result[R]) outcome[R] {
	v, obs, err := s.run(ctx, f)
	var fe fatalError
	if errors.As(err, &fe) {
		return outcome[R]{fatal: fe.err, token: true}
	}
	res.Value, res.Err = v, err
	return outcome[R]{res: res, obs: obs, token: true}
}

func (s *Session[R]) run(ctx context.Context, f Frame) (v R, obs Observation, err error) {
	defer errkind.Recover(&err)
	return s.Process(ctx, f)
}

// emit is the session's only sender: results in arrival order with the tallies and
// alerts they cause, and with Summaries, a summary every SummaryInterval and one at the end.
func (s *Session[R]) emit(ctx context.Context, opts Options, pending <-chan chan outcome[R], free <-chan struct{}) error {
	tally := newTally(opts.TallyWindow)
	rules := make([]ruleState, len(opts.Rules))
	for i, r := range opts.Rules {
		rules[i].rule = r
	}
	var tick <-chan time.Time
	if opts.Summaries {
		t := time.NewTicker(opts.SummaryInterval)
		defer t.Stop()
		tick = t.C
	}
	var slot chan outcome[R] // the oldest frame's, once known
	for {
		next := pending
		if slot != nil {
			next = nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-tick:
			if err := s.Sink.Summary(tally.summary(opts.CameraID)); err != nil {
				return err
			}
		case sl, ok := <-next:
			if !ok {
				if ctx.Err() != nil {
					return context.Cause(ctx)
				}
				if opts.Summaries {
					return s.Sink.Summary(tally.summary(opts.CameraID))
				}
				return nil
			}
			slot = sl
		case o := <-slot:
			slot = nil
			if o.token {
				<-free
			}
			if o.fatal != nil {
				return o.fatal
			}
			if err := s.answer(ctx, opts.CameraID, o, tally, rules); err != nil {
				return err
			}
		}
	}
}

// answer sends one frame's result and the alerts it fires, after counting it.
func (s *Session[R]) answer(ctx context.Context, camera string, o outcome[R], tally *tally, rules []ruleState) error {
	if ctx.Err() != nil {
		return context.Cause(ctx) // the frame's error is the stream's end, not the frame's fault
	}
	var alerts []Alert
	if !o.res.Skipped && o.res.Err == nil {
		tally.add(o.res.Captured, o.obs.Counted)
		for i := range rules {
			if a, ok := rules[i].observe(camera, o.res.FrameID, o.res.Captured, o.obs); ok {
				alerts = append(alerts, a)
			}
		}
	}
	if err := s.Sink.Result(o.res); err != nil {
		return err
	}
	for _, a := range alerts {
		if s.Hub != nil {
			s.Hub.Publish(a)
		}
		if err := s.Sink.Alert(a); err != nil {
			return err
		}
	}
	return nil
}
