package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/errkind"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a Sink that keeps everything, with the time each result arrived.
type recorder struct {
	mu        sync.Mutex
	results   []Result[string]
	arrived   []time.Time
	summaries []Summary
	alerts    []Alert
	failAfter int // fail the Result call after this many results; 0 never
}

func (r *recorder) Result(res Result[string]) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failAfter > 0 && len(r.results) == r.failAfter {
		return errors.New("client went away")
	}
	r.results = append(r.results, res)
	r.arrived = append(r.arrived, time.Now())
	return nil
}

func (r *recorder) Summary(s Summary) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.summaries = append(r.summaries, s)
	return nil
}

func (r *recorder) Alert(a Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alerts = append(r.alerts, a)
	return nil
}

// feed returns a Recv that yields n frames (ids 1..n) as fast as asked, stamped with
// the time they are received, then io.EOF. mark(i) may turn frame i into a bad one.
func feed(ctx context.Context, n int, mark func(*Frame)) func() (Frame, error) {
	next := 0
	return func() (Frame, error) {
		if ctx.Err() != nil {
			return Frame{}, ctx.Err()
		}
		if next == n {
			return Frame{}, io.EOF
		}
		next++
		f := Frame{ID: uint64(next), Captured: time.Now()}
		if mark != nil {
			mark(&f)
		}
		return f, nil
	}
}

// labelled answers each frame with its id after a delay; frames with an even id show
// a Dress at 0.9, the others a Coat at 0.8.
func labelled(delay func() time.Duration) Process[string] {
	return func(ctx context.Context, f Frame) (string, Observation, error) {
		select {
		case <-time.After(delay()):
		case <-ctx.Done():
			return "", Observation{}, ctx.Err()
		}
		label, score := "Coat", float32(0.8)
		if f.ID%2 == 0 {
			label, score = "Dress", 0.9
		}
		return fmt.Sprint(f.ID), Observation{Counted: []string{label}, Seen: []Sighting{{label, score}}}, nil
	}
}

func TestOrderAndNothingDroppedUnderBlock(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	s := &Session[string]{
		Options: Options{Policy: PolicyBlock, QueueSize: 2, TallyWindow: time.Hour},
		Recv:    feed(ctx, 300, nil),
		// Random delays finish frames out of order inside the pipeline.
		Process: labelled(func() time.Duration { return time.Duration(rand.IntN(500)) * time.Microsecond }),
		Sink:    rec,
	}
	if err := s.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := len(rec.results), 300; got != want {
		t.Fatalf("got %d results, want %d", got, want)
	}
	for i, r := range rec.results {
		if r.FrameID != uint64(i+1) || r.Skipped || r.Err != nil || r.Value != fmt.Sprint(i+1) {
			t.Fatalf("result %d: got %+v, want frame %d answered", i, r, i+1)
		}
	}
}

// paced returns a Recv that yields n frames captured one every interval (or later,
// when the session does not read them), then io.EOF.
func paced(ctx context.Context, n int, interval time.Duration) func() (Frame, error) {
	next, recv := time.Now(), feed(ctx, n, nil)
	return func() (Frame, error) {
		time.Sleep(time.Until(next))
		f, err := recv()
		f.Captured = next
		next = next.Add(interval)
		return f, err
	}
}

// TestLatestSkipsAndBoundsLatency sends frames at 2.5 times what a slow model serves:
// under PolicyLatest every frame is answered, in order, many as skipped, and served
// frames never wait long; under PolicyBlock nothing is skipped and the wait grows
// with the backlog.
func TestLatestSkipsAndBoundsLatency(t *testing.T) {
	const (
		frames   = 300
		interval = time.Millisecond
		serve    = 10 * time.Millisecond // Depth frames at once: 400 frames/s
	)
	for _, tc := range []struct {
		policy        Policy
		minSkipped    int
		maxWait       time.Duration // for the slowest served frame, at most
		minWaitOfLast time.Duration // for the last frame, at least
	}{
		{PolicyLatest, frames / 3, 150 * time.Millisecond, 0},
		// 300 frames take at least 750 ms to serve, and arrive within 300 ms.
		{PolicyBlock, 0, time.Hour, 400 * time.Millisecond},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			ctx := context.Background()
			rec := &recorder{}
			s := &Session[string]{
				Options: Options{Policy: tc.policy, QueueSize: 2, TallyWindow: time.Hour},
				Recv:    paced(ctx, frames, interval),
				Process: labelled(func() time.Duration { return serve }),
				Sink:    rec,
			}
			if err := s.Run(ctx); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := len(rec.results); got != frames {
				t.Fatalf("got %d results, want %d (one per frame)", got, frames)
			}
			skipped, slowest := 0, time.Duration(0)
			for i, r := range rec.results {
				if r.FrameID != uint64(i+1) {
					t.Fatalf("result %d has frame id %d, want %d", i, r.FrameID, i+1)
				}
				if r.Skipped {
					skipped++
					continue
				}
				slowest = max(slowest, rec.arrived[i].Sub(r.Captured))
			}
			last := rec.arrived[frames-1].Sub(rec.results[frames-1].Captured)
			t.Logf("%s: %d of %d frames skipped, slowest served frame %v, last frame %v", tc.policy, skipped, frames, slowest, last)
			if skipped < tc.minSkipped || (tc.minSkipped == 0 && skipped != 0) {
				t.Errorf("got %d skipped frames, want at least %d (none under block)", skipped, tc.minSkipped)
			}
			if slowest > tc.maxWait {
				t.Errorf("slowest served frame waited %v, want at most %v", slowest, tc.maxWait)
			}
			if last < tc.minWaitOfLast {
				t.Errorf("last frame waited %v, want at least %v", last, tc.minWaitOfLast)
			}
		})
	}
}

func TestFrameErrorsKeepTheStream(t *testing.T) {
	ctx := context.Background()
	bad := errors.New("corrupt JPEG")
	rec := &recorder{}
	s := &Session[string]{
		Options: Options{TallyWindow: time.Hour},
		Recv: feed(ctx, 6, func(f *Frame) {
			if f.ID == 2 {
				f.Err = bad // could not be read
			}
		}),
		Process: func(ctx context.Context, f Frame) (string, Observation, error) {
			if f.ID == 4 {
				return "", Observation{}, fmt.Errorf("frame 4: %w", bad) // failed in the model
			}
			return fmt.Sprint(f.ID), Observation{}, nil
		},
		Sink: rec,
	}
	if err := s.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for i, r := range rec.results {
		wantErr := r.FrameID == 2 || r.FrameID == 4
		if r.FrameID != uint64(i+1) || errors.Is(r.Err, bad) != wantErr {
			t.Fatalf("result %d: got %+v, want frame %d with error %v", i, r, i+1, wantErr)
		}
	}
	if len(rec.results) != 6 {
		t.Fatalf("got %d results, want 6", len(rec.results))
	}
}

func TestStreamEnds(t *testing.T) {
	violation := errors.New("second config")
	unknown := errors.New("model not found")
	cases := []struct {
		name    string
		recv    func(ctx context.Context) func() (Frame, error)
		process Process[string]
		sink    *recorder
		want    error
	}{
		{"recv fails", func(ctx context.Context) func() (Frame, error) {
			n := 0
			return func() (Frame, error) {
				if n++; n == 5 {
					return Frame{}, violation
				}
				return Frame{ID: uint64(n)}, nil
			}
		}, labelled(func() time.Duration { return time.Millisecond }), &recorder{}, violation},
		{"fatal process error", func(ctx context.Context) func() (Frame, error) { return feed(ctx, 100, nil) },
			func(context.Context, Frame) (string, Observation, error) { return "", Observation{}, Fatal(unknown) },
			&recorder{}, unknown},
		{"sink fails", func(ctx context.Context) func() (Frame, error) { return feed(ctx, 100, nil) },
			labelled(func() time.Duration { return 0 }), &recorder{failAfter: 3}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := &Session[string]{Options: Options{TallyWindow: time.Hour}, Recv: tc.recv(ctx), Process: tc.process, Sink: tc.sink}
			err := s.Run(ctx)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Run: got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestCancelledStreamsFreeEverything cancels many streams mid-way, in every state:
// blocked on a full queue, waiting in the model, waiting for frames.
func TestCancelledStreamsFreeEverything(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			policy := Policy(i % 2)
			s := &Session[string]{
				Options: Options{Policy: policy, QueueSize: 1 + i%3, TallyWindow: time.Hour},
				Recv:    feed(ctx, 1_000_000, nil),
				Process: labelled(func() time.Duration { return time.Duration(i%4) * time.Millisecond }),
				Sink:    &recorder{},
			}
			time.AfterFunc(time.Duration(i%7)*time.Millisecond, cancel)
			if err := s.Run(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("stream %d: got %v, want context.Canceled", i, err)
			}
		}()
	}
	wg.Wait()
	if err := goleak.Find(); err != nil {
		t.Fatal(err)
	}
}

func TestSummariesAndAlertsRideTheStream(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	hub := NewHub(0)
	sub := hub.Subscribe(Filter{})
	defer sub.Close()
	// Frames 1..5 show a Coat, 6..12 a Dress, 13..14 a Coat: one appearance of a Dress.
	s := &Session[string]{
		Options: Options{CameraID: "door", TallyWindow: time.Hour, Summaries: true, SummaryInterval: time.Hour, Rules: []Rule{
			{Name: "dress", Categories: []string{"Dress"}, MinScore: 0.6, MinConsecutive: 3},
		}},
		Recv: feed(ctx, 14, nil),
		Process: func(_ context.Context, f Frame) (string, Observation, error) {
			label := "Coat"
			if f.ID >= 6 && f.ID <= 12 {
				label = "Dress"
			}
			return label, Observation{Counted: []string{label}, Seen: []Sighting{{label, 0.9}}}, nil
		},
		Sink: rec,
		Hub:  hub,
	}
	if err := s.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rec.alerts) != 1 || rec.alerts[0].FrameID != 8 || rec.alerts[0].CameraID != "door" || rec.alerts[0].Label != "Dress" {
		t.Fatalf("got alerts %+v, want one for frame 8", rec.alerts)
	}
	if got := <-sub.Alerts(); got != rec.alerts[0] {
		t.Fatalf("hub: got %+v, want %+v", got, rec.alerts[0])
	}
	if len(rec.summaries) != 1 {
		t.Fatalf("got %d summaries, want the final one", len(rec.summaries))
	}
	sum := rec.summaries[0]
	want := []Count{{"Coat", 7}, {"Dress", 7}}
	if sum.Frames != 14 || fmt.Sprint(sum.Counts) != fmt.Sprint(want) {
		t.Fatalf("got summary %d frames %v, want 14 frames %v", sum.Frames, sum.Counts, want)
	}
}

func TestAPanicInProcessFailsOnlyItsFrame(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	s := &Session[string]{
		Options: Options{Policy: PolicyBlock, TallyWindow: time.Hour},
		Recv:    feed(ctx, 5, nil),
		Process: func(ctx context.Context, f Frame) (string, Observation, error) {
			if f.ID == 3 {
				panic("bad frame")
			}
			return fmt.Sprint(f.ID), Observation{}, nil
		},
		Sink: rec,
	}
	if err := s.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	s.Wait() // the receive loop is the session's too
	if len(rec.results) != 5 {
		t.Fatalf("got %d results, want 5", len(rec.results))
	}
	for i, r := range rec.results {
		var p *errkind.Panic
		if failed := errors.As(r.Err, &p); failed != (i == 2) {
			t.Fatalf("frame %d: got error %v, want a recovered panic only on frame 3", r.FrameID, r.Err)
		}
	}
}

func TestAPanicInRecvEndsTheStreamWithIt(t *testing.T) {
	s := &Session[string]{
		Options: Options{TallyWindow: time.Hour},
		Recv:    func() (Frame, error) { panic("transport blew up") },
		Process: labelled(func() time.Duration { return 0 }),
		Sink:    &recorder{},
	}
	err := s.Run(context.Background())
	s.Wait()
	var p *errkind.Panic
	if !errors.As(err, &p) {
		t.Fatalf("got %v, want the recovered panic", err)
	}
}

// TestCaptureTimesFromTheFutureAreRefused sends, among frames stamped now, one from
// two hours ahead and one from 1969: each is answered with INVALID_ARGUMENT naming
// capture_time, and the frames after the future one still count in the tally and
// fire the rule, which one frame from the future would otherwise stop.
func TestCaptureTimesFromTheFutureAreRefused(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	s := &Session[string]{
		Options: Options{Policy: PolicyBlock, QueueSize: 2, TallyWindow: time.Hour, Summaries: true, SummaryInterval: time.Hour,
			Rules: []Rule{{Name: "dress", Categories: []string{"Dress"}, MinConsecutive: 1, Cooldown: time.Minute}}},
		Recv: feed(ctx, 10, func(f *Frame) {
			switch f.ID {
			case 3:
				f.Captured = f.Captured.Add(2 * time.Hour)
			case 5:
				f.Captured = time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC)
			}
		}),
		Process: labelled(func() time.Duration { return 0 }),
		Sink:    rec,
	}
	if err := s.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, r := range rec.results {
		bad := r.FrameID == 3 || r.FrameID == 5
		if got := r.Err != nil; got != bad {
			t.Errorf("frame %d: got error %v, want one: %v", r.FrameID, r.Err, bad)
		}
		if bad && (!errors.Is(r.Err, errkind.Invalid) || !strings.Contains(r.Err.Error(), "capture_time")) {
			t.Errorf("frame %d: got %v, want INVALID_ARGUMENT naming capture_time", r.FrameID, r.Err)
		}
	}
	last := rec.summaries[len(rec.summaries)-1]
	if last.Frames != 8 {
		t.Errorf("tally: got %d frames, want the 8 good ones", last.Frames)
	}
	if len(rec.alerts) != 1 || rec.alerts[0].FrameID != 2 {
		t.Errorf("alerts: got %+v, want one on frame 2", rec.alerts)
	}
}
