package dashboard

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// TestBackoff: each wait is within 20% of its nominal value, which starts at first and
// doubles up to limit; the attempts are counted; reset starts over.
func TestBackoff(t *testing.T) {
	const first, limit = 500 * time.Millisecond, 8 * time.Second
	b := newBackoff(first, limit)
	within := func(got, nominal time.Duration) bool {
		return got >= nominal*8/10 && got <= nominal*12/10
	}
	nominals := []time.Duration{first, 2 * first, 4 * first, 8 * first, limit, limit, limit}
	for round := range 2 {
		for i, nominal := range nominals {
			got := b.next()
			if !within(got, nominal) {
				t.Errorf("round %d, attempt %d: waits %v, want %v ± 20%%", round, i+1, got, nominal)
			}
			if b.attempt != i+1 {
				t.Errorf("round %d: attempt %d counted as %d", round, i+1, b.attempt)
			}
		}
		b.reset()
		if b.attempt != 0 {
			t.Errorf("after reset: attempt %d, want 0", b.attempt)
		}
	}
	// The jitter spreads the waits over the whole ±20% (clients that failed together
	// do not retry together), not just a point of it.
	lo, hi := limit, time.Duration(0)
	for range 1000 {
		b.reset()
		w := b.next()
		lo, hi = min(lo, w), max(hi, w)
	}
	if lo < first*8/10 || hi > first*12/10 || lo > first*85/100 || hi < first*115/100 {
		t.Errorf("1000 first waits span [%v, %v], want about [%v, %v]", lo, hi, first*8/10, first*12/10)
	}
}

// TestViewFPSCapsFrameEvents: with --view-fps 2 a page gets at most about 2 frames
// events a second however fast the camera is answered (20 frames a second here), each
// with a newer frame.
func TestViewFPSCapsFrameEvents(t *testing.T) {
	fake := startFake(t, "")
	c := fastClient(t, fake.addr)
	defer c.Close()
	cfg := DefaultConfig()
	cfg.Addr, cfg.FPS, cfg.ViewFPS = fake.addr, 20, 2
	cfg.Cameras = []Camera{{"door", writeFrames(t, 5)}}
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	d, _ := runDashboard(t, c, cfg)
	web := httptest.NewServer(d.Handler())
	defer web.Close()
	ev := openEvents(t, web.URL)
	defer ev.body.Close()
	ev.wait("frames", 10*time.Second, func(string) bool { return true })
	var ids []uint64
	for end := time.After(3 * time.Second); ; {
		select {
		case e, open := <-ev.ch:
			if !open {
				t.Fatal("the event stream ended")
			}
			if e[0] == "frames" {
				var views map[string]view
				if err := json.Unmarshal([]byte(e[1]), &views); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, views["door"].ID)
			}
			continue
		case <-end:
		}
		break
	}
	answered := d.snapshot(time.Now(), false).Cameras["door"].Answered
	t.Logf("frames events in 3 s at --view-fps 2: %v; %d frames answered in all", ids, answered)
	if len(ids) > 7 {
		t.Errorf("%d frames events in 3 s, want at most 7 (2 a second)", len(ids))
	}
	if len(ids) < 2 || !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Errorf("frames events of frames %v, want at least 2, each newer than the last", ids)
	}
	if answered < 20 {
		t.Errorf("%d frames answered, want the camera well above --view-fps", answered)
	}
}
