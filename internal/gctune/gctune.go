// Package gctune keeps the Go garbage collector from running while the heap is small.
//
// atelierd's live Go heap is a few MB: TensorFlow's tensors and weights live in C
// memory. Go's default target (GOGC=100) collects whenever the heap has grown by its
// live size, so a small heap under load is collected several times a second, for a
// few µs of CPU a request. Raising GOGC cures that but multiplies the peak heap when
// the live heap is large (many big images decoded at once). A heap floor does
// neither: after every collection, the target is raised just enough that the next one
// starts no sooner than at Floor bytes, and left at GOGC once the live heap is large
// enough for GOGC to reach the floor by itself. This is the "heap floor" GC tuning
// of Uber's Go services, done with a finalizer that runs once per collection.
package gctune

import (
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"sync/atomic"
)

// runtimeHeapMinimum is the Go runtime's smallest heap goal at GOGC=100; it scales
// with the percent (4 MB x GOGC/100), so a percent above floor/4MB x 100 would set a
// goal above the floor by itself.
const runtimeHeapMinimum = 4 << 20

// Tuner holds the floor. Start one per process.
type Tuner struct {
	floor   uint64
	base    int // the percent in force at Start (GOGC, or 100)
	stopped atomic.Bool
	percent atomic.Int64 // the percent set after the last collection
}

// Start keeps the heap goal at least floor bytes from now on, on top of the GC
// percent in force (GOGC). It returns nil, and does nothing, when floor is 0 or
// garbage collection is off (GOGC=off).
func Start(floor uint64) *Tuner {
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	if floor == 0 || base < 0 {
		return nil
	}
	t := &Tuner{floor: floor, base: base}
	t.percent.Store(int64(base))
	t.tune()
	t.arm()
	return t
}

// Stop gives the percent back to its value at Start; the tuner does nothing more.
func (t *Tuner) Stop() {
	if t == nil || t.stopped.Swap(true) {
		return
	}
	debug.SetGCPercent(t.base)
}

// Percent is the target set after the last collection.
func (t *Tuner) Percent() int { return int(t.percent.Load()) }

// sentinel is garbage the moment it is made: its finalizer runs after the next
// collection, tunes, and makes the next sentinel.
type sentinel struct{ t *Tuner }

func (t *Tuner) arm() {
	runtime.SetFinalizer(&sentinel{t}, func(s *sentinel) {
		if s.t.stopped.Load() {
			return
		}
		s.t.tune()
		s.t.arm()
	})
}

// tune sets the percent for the next cycle from the heap the last one found live.
func (t *Tuner) tune() {
	p := Percent(runtimeUint64("/gc/heap/live:bytes"), t.floor, t.base)
	if int64(p) != t.percent.Swap(int64(p)) && !t.stopped.Load() {
		debug.SetGCPercent(p)
	}
}

// Percent is the target that makes the next collection start at about floor bytes of
// heap for a live heap of live bytes, and never below base.
func Percent(live, floor uint64, base int) int {
	p := floor * 100 / runtimeHeapMinimum // the runtime's own minimum reaches the floor
	if live > 0 && live < floor {
		p = min(p, floor*100/live-100)
	} else if live >= floor {
		p = 0
	}
	return max(int(p), base)
}

// runtimeUint64 reads one of the runtime's uint64 metrics (0 if this Go has none).
func runtimeUint64(name string) uint64 {
	s := []rtmetrics.Sample{{Name: name}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() != rtmetrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
