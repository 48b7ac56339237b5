package gctune

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestPercent(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		live, floor uint64
		base, want  int
	}{
		{3 * mb, 64 * mb, 100, 1600},  // 64/3 - 1 = 2033%, capped where the runtime's minimum heap reaches 64 MB
		{8 * mb, 64 * mb, 100, 700},   // 8 MB x 8 = 64 MB
		{32 * mb, 64 * mb, 100, 100},  // GOGC reaches the floor by itself
		{200 * mb, 64 * mb, 100, 100}, // a large live heap: GOGC alone
		{8 * mb, 64 * mb, 1000, 1000}, // never below GOGC
		{0, 64 * mb, 100, 1600},
	} {
		if got := Percent(tc.live, tc.floor, tc.base); got != tc.want {
			t.Errorf("Percent(%d MB live, %d MB floor, base %d) = %d, want %d", tc.live/mb, tc.floor/mb, tc.base, got, tc.want)
		}
	}
}

// TestFloorHoldsTheGoal runs the tuner in this process: with a small live heap the
// runtime's heap goal rises to the floor after a collection; with a live heap larger
// than the floor it falls back to GOGC's; Stop gives GOGC back.
func TestFloorHoldsTheGoal(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	const floor = 64 << 20
	tu := Start(floor)
	if tu == nil {
		t.Fatal("Start returned nil with GC on and a floor")
	}
	defer tu.Stop()
	collect := func() {
		// The finalizer tunes after a collection; a second one commits its percent.
		runtime.GC()
		runtime.GC()
		runtime.GC()
	}
	collect()
	if goal := runtimeUint64("/gc/heap/goal:bytes"); goal < floor*9/10 {
		t.Fatalf("small live heap (%d MB): goal %d MB, want about the %d MB floor (percent %d)", runtimeUint64("/gc/heap/live:bytes")>>20, goal>>20, floor>>20, tu.Percent())
	}
	big := make([]byte, 3*floor)
	for i := range big {
		big[i] = 1
	}
	collect()
	if p := tu.Percent(); p != 100 {
		t.Fatalf("live heap of %d MB: percent %d, want GOGC's 100", runtimeUint64("/gc/heap/live:bytes")>>20, p)
	}
	runtime.KeepAlive(big)
	tu.Stop()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Fatalf("after Stop: percent %d, want 100", p)
	}
}

func TestStartOffWithoutFloorOrGC(t *testing.T) {
	if Start(0) != nil {
		t.Fatal("Start(0) started a tuner")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	if Start(64<<20) != nil {
		t.Fatal("Start with GOGC=off started a tuner")
	}
}
