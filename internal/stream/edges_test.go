package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/errkind"
)

// Edge cases a hostile or broken client reaches: a client that never reads, capture
// times that jump, tallies and rules at their limits, and watchers that flood or stall.

// stuckSink is a Sink whose first Result blocks until the session ends, as a gRPC send
// does when the client never reads its responses.
type stuckSink struct {
	ctx     context.Context
	results atomic.Int64
}

func (k *stuckSink) Result(Result[string]) error {
	k.results.Add(1)
	<-k.ctx.Done()
	return k.ctx.Err()
}
func (k *stuckSink) Summary(Summary) error { <-k.ctx.Done(); return k.ctx.Err() }
func (k *stuckSink) Alert(Alert) error     { <-k.ctx.Done(); return k.ctx.Err() }

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// settled polls f until its value stops changing for 50 ms, and returns it.
func settled(t *testing.T, f func() int64) int64 {
	t.Helper()
	last, since := f(), time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Since(since) < 50*time.Millisecond; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the session to settle")
		}
		if v := f(); v != last {
			last, since = v, time.Now()
		}
	}
	return last
}

// TestAStuckClientStopsTheReceiveLoop: when the sink never returns (a client that
// sends frames as fast as it can and never reads), the session reads a bounded number
// of frames and then stops reading, so the transport's flow control stops the client.
// Under block that is exactly the queue, the Depth frames in the pipeline, the frame
// whose result is being sent and the one the receive loop holds; under latest, up to
// 2 x MaxPendingSkips + 1 skip reports more (at least the MaxPendingSkips in the queue).
// Nothing grows after that, however long it lasts.
func TestAStuckClientStopsTheReceiveLoop(t *testing.T) {
	const queue = 3
	for _, tc := range []struct {
		policy   Policy
		min, max int64 // frames read
	}{
		{PolicyBlock, queue + Depth + 2, queue + Depth + 2},
		// The docs say 2 x MaxPendingSkips skip reports: MaxPendingSkips in the queue and
		// as many in the pipeline, but the dispatcher may hold one more while the pipeline
		// is full. Skip reports hold no image, so the frames are bounded as under block.
		{PolicyLatest, queue + Depth + 2 + MaxPendingSkips, queue + Depth + 2 + 2*MaxPendingSkips + 1},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			var reads, processed atomic.Int64
			first := make(chan struct{}) // closed once frame 1 is in the model, so it is never evicted
			sink := &stuckSink{ctx: ctx}
			s := &Session[string]{
				Options: Options{Policy: tc.policy, QueueSize: queue, TallyWindow: time.Hour},
				Recv: func() (Frame, error) {
					n := reads.Add(1)
					if n == 2 {
						<-first
					}
					return Frame{ID: uint64(n), Captured: time.Now()}, nil
				},
				Process: func(_ context.Context, f Frame) (string, Observation, error) {
					if processed.Add(1); f.ID == 1 {
						close(first)
					}
					return "", Observation{}, nil
				},
				Sink: sink,
			}
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			waitFor(t, fmt.Sprintf("%d frames read", tc.min), func() bool { return reads.Load() >= tc.min })
			if got := settled(t, reads.Load); got < tc.min || got > tc.max {
				t.Fatalf("the session read %d frames from a client that never reads, want it to stop within %d..%d", got, tc.min, tc.max)
			}
			// Under latest, skip reports may fill the pipeline before Depth frames do.
			if got := settled(t, processed.Load); got > Depth+1 || (tc.policy == PolicyBlock && got != Depth+1) {
				t.Errorf("processed %d frames, want %d (the one being answered and Depth more; under latest at most that)", got, Depth+1)
			}
			if got := sink.results.Load(); got != 1 {
				t.Errorf("the sink was given %d results, want 1 (it never returned)", got)
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Run: got %v, want context.Canceled", err)
			}
			s.Wait()
		})
	}
}

// TestRulesAfterTheClockStepsBack: a camera whose clock is set back (here by 4
// minutes, as NTP would correct a clock within MaxCaptureAhead) keeps its rules
// alive: a rule without cooldown fires on the next appearance, and one with a cooldown
// is quiet for that cooldown, not for the step as well. Before the fix the first
// stayed quiet 4 minutes and the second 5.
func TestRulesAfterTheClockStepsBack(t *testing.T) {
	for _, tc := range []struct {
		cooldown time.Duration
		quiet    time.Duration // after the step, until the next alert
	}{
		{0, 0},
		{time.Minute, time.Minute},
	} {
		t.Run(fmt.Sprint(tc.cooldown), func(t *testing.T) {
			st := ruleState{rule: Rule{Name: "dress", Categories: []string{"Dress"}, MinConsecutive: 1, Cooldown: tc.cooldown}}
			dress, nothing := Observation{Seen: []Sighting{{"Dress", 0.9}}}, Observation{}
			t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
			if _, fired := st.observe("c", 1, t0, dress); !fired {
				t.Fatal("the first appearance did not fire")
			}
			st.observe("c", 2, t0.Add(time.Second), nothing)
			// After the step, a new appearance (one frame) every 10 seconds.
			step := t0.Add(-4 * time.Minute)
			quiet := time.Duration(-1)
			for i := range 60 {
				at := step.Add(time.Duration(i) * 10 * time.Second)
				if _, ok := st.observe("c", uint64(10+2*i), at, dress); ok {
					quiet = at.Sub(step)
					break
				}
				st.observe("c", uint64(11+2*i), at.Add(time.Second), nothing)
			}
			if quiet != tc.quiet {
				t.Fatalf("the rule was quiet for %v after the clock stepped back, want %v", quiet, tc.quiet)
			}
		})
	}
}

// TestCooldownWithFramesOutOfOrder: frames out of capture-time order (two stamped the
// same, one a moment earlier) neither fire a rule without cooldown twice in one
// appearance nor stop it firing on the next, though that one is stamped before the
// first alert (before the fix it stayed quiet until capture time passed the alert's).
func TestCooldownWithFramesOutOfOrder(t *testing.T) {
	st := ruleState{rule: Rule{Name: "dress", Categories: []string{"Dress"}, MinConsecutive: 2, Cooldown: 0}}
	dress, nothing := Observation{Seen: []Sighting{{"Dress", 0.9}}}, Observation{}
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var fired []uint64
	for i, f := range []struct {
		at  time.Duration
		obs Observation
	}{
		{0, dress}, {0, dress}, {-time.Millisecond, dress}, // one appearance: fires on its 2nd frame
		{time.Second, nothing},
		{-900 * time.Millisecond, dress}, {-800 * time.Millisecond, dress}, // the next, stamped before the alert
	} {
		if _, ok := st.observe("c", uint64(i), t0.Add(f.at), f.obs); ok {
			fired = append(fired, uint64(i))
		}
	}
	if fmt.Sprint(fired) != "[1 5]" {
		t.Fatalf("fired on frames %v, want [1 5]", fired)
	}
}

// TestTallyAtItsLimits: the shortest window (1 ns, buckets of 1 ns) and the longest
// (24 hours) count what they should; frames from 1970 and from before the window are
// answered but not counted, and do not disturb the counts of the frames after them.
func TestTallyAtItsLimits(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		window time.Duration
		times  []time.Time
		want   uint64
	}{
		// Only the newest instant counts in a 1 ns window (its buckets are 1 ns wide).
		{time.Nanosecond, []time.Time{now.Add(-time.Millisecond), now, now}, 2},
		{MaxTallyWindow, []time.Time{now.Add(-23 * time.Hour), now.Add(-25 * time.Hour), now}, 2},
		{DefaultTallyWindow, []time.Time{time.Unix(0, 0), now, time.Unix(0, 0), now.Add(-time.Minute), time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)}, 2},
	} {
		t.Run(tc.window.String(), func(t *testing.T) {
			ctx := context.Background()
			rec := &recorder{}
			i := 0
			s := &Session[string]{
				Options: Options{TallyWindow: tc.window, Summaries: true, SummaryInterval: time.Hour},
				Recv: func() (Frame, error) {
					if i == len(tc.times) {
						return Frame{}, io.EOF
					}
					i++
					return Frame{ID: uint64(i), Captured: tc.times[i-1]}, nil
				},
				Process: func(context.Context, Frame) (string, Observation, error) {
					return "", Observation{Counted: []string{"Dress"}}, nil
				},
				Sink: rec,
			}
			if err := s.Run(ctx); err != nil {
				t.Fatal(err)
			}
			if len(rec.results) != len(tc.times) {
				t.Fatalf("got %d results, want %d", len(rec.results), len(tc.times))
			}
			for _, r := range rec.results {
				if r.Err != nil {
					t.Fatalf("frame %d: %v", r.FrameID, r.Err)
				}
			}
			sum := rec.summaries[len(rec.summaries)-1]
			if sum.Frames != tc.want || len(sum.Counts) != 1 || sum.Counts[0].N != tc.want {
				t.Fatalf("got %d frames %v, want %d Dresses", sum.Frames, sum.Counts, tc.want)
			}
			if !sum.WindowEnd.Equal(now) {
				t.Fatalf("window ends at %v, want the newest frame's %v", sum.WindowEnd, now)
			}
		})
	}
}

// TestCaptureTimeEdges: the capture times a broken camera sends. Times from 1970 up to
// MaxCaptureAhead from now are taken; earlier or later ones fail their frame only.
func TestCaptureTimeEdges(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name string
		at   time.Time
		bad  string // in the frame's error; "" for none
	}{
		{"the epoch", time.Unix(0, 0), ""},
		{"1990", time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), ""},
		{"a nanosecond before 1970", time.Unix(0, -1), "before 1970"},
		{"year 1", time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC), "before 1970"},
		{"just within the clock skew", now.Add(MaxCaptureAhead - time.Second), ""},
		{"past the clock skew", now.Add(MaxCaptureAhead + time.Minute), "ahead of the server's clock"},
		{"year 9999", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), "ahead of the server's clock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkCaptured(Frame{ID: 7, Captured: tc.at}, now)
			if (err != nil) != (tc.bad != "") || (err != nil && (!errors.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), tc.bad))) {
				t.Fatalf("got %v, want an INVALID_ARGUMENT saying %q (none if empty)", err, tc.bad)
			}
		})
	}
}

// TestAlertFloodWithManyRules runs the most a config allows, 16 rules of 64 categories
// with no cooldown, on frames that alternate between a Dress and nothing (a new
// appearance every other frame, 16 alerts each) while 200 watchers listen and 199 of
// them never read: the camera is never held up, each rule fires once per appearance,
// the stalled watchers are cut off holding exactly their buffer, and the watcher of one
// rule, which its buffer can hold, gets every alert of it in order.
func TestAlertFloodWithManyRules(t *testing.T) {
	const frames = 400
	hub := NewHub(0)
	rules := make([]Rule, MaxRules)
	for i := range rules {
		cats := make([]string, MaxCategories)
		for j := range cats {
			cats[j] = fmt.Sprintf("odd\x00name\u00e9 %d", j) // NUL and non-ASCII bytes pass through
		}
		cats[MaxCategories-1] = "Dress"
		rules[i] = Rule{Name: fmt.Sprintf("rule \x00%02d", i), Categories: cats, MinConsecutive: 1}
	}
	stalled := make([]*Subscription, 199)
	for i := range stalled {
		stalled[i] = hub.Subscribe(Filter{})
		defer stalled[i].Close()
	}
	one := hub.Subscribe(Filter{Rules: []string{rules[3].Name, rules[3].Name}}) // a name twice is harmless
	defer one.Close()
	rec := &recorder{}
	s := &Session[string]{
		Options: Options{CameraID: "door", TallyWindow: time.Hour, Rules: rules},
		Recv:    feed(context.Background(), frames, nil),
		Process: func(_ context.Context, f Frame) (string, Observation, error) {
			if f.ID%2 == 1 {
				return "", Observation{Seen: []Sighting{{"Dress", 0.9}}}, nil
			}
			return "", Observation{}, nil
		},
		Sink: rec,
		Hub:  hub,
	}
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := frames / 2 * MaxRules; len(rec.alerts) != want {
		t.Fatalf("the stream raised %d alerts, want %d (16 rules x 200 appearances)", len(rec.alerts), want)
	}
	if len(one.Alerts()) != frames/2 {
		t.Fatalf("the watcher of one rule holds %d alerts, want %d", len(one.Alerts()), frames/2)
	}
	for i := range frames / 2 {
		if a := <-one.Alerts(); a.FrameID != uint64(2*i+1) || a.Rule != rules[3].Name || a.CameraID != "door" {
			t.Fatalf("alert %d: got %+v, want frame %d of %q", i, a, 2*i+1, rules[3].Name)
		}
	}
	for i, sub := range stalled {
		select {
		case <-sub.Lost():
		default:
			t.Fatalf("stalled watcher %d was not cut off", i)
		}
		if len(sub.Alerts()) != DefaultWatchBuffer {
			t.Fatalf("stalled watcher %d holds %d alerts, want its buffer of %d", i, len(sub.Alerts()), DefaultWatchBuffer)
		}
	}
	if watchers, lost := hub.Stats(); watchers != 1 || lost != int64(len(stalled)) {
		t.Fatalf("got %d watchers and %d cut off, want 1 and %d", watchers, lost, len(stalled))
	}
}

// BenchmarkPublishToLongFilters publishes to the 64 watchers one caller may open
// (--max-streams-per-caller), each listing the 1000 cameras and rules WatchAlerts
// allows, every one MaxNameBytes long and differing from the alert's camera in its
// last byte only. Publish holds the hub's lock, which every camera raising an alert
// waits for: scanning the lists took about 0.5 ms per alert, the sets take microseconds.
func BenchmarkPublishToLongFilters(b *testing.B) {
	hub := NewHub(0)
	camera := strings.Repeat("c", MaxNameBytes)
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%03d", strings.Repeat("c", MaxNameBytes-3), i)
	}
	for range 64 {
		s := hub.Subscribe(Filter{Cameras: ids, Rules: ids})
		defer s.Close()
	}
	for b.Loop() {
		hub.Publish(Alert{CameraID: camera, Rule: "r"})
	}
}
