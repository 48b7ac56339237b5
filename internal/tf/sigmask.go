package tf

// #include <pthread.h>
// #include <signal.h>
//
// static int atelier_block_sigprof(sigset_t *old) {
// 	sigset_t s;
// 	sigemptyset(&s);
// 	sigaddset(&s, SIGPROF);
// 	return pthread_sigmask(SIG_BLOCK, &s, old);
// }
//
// static int atelier_restore_sigmask(const sigset_t *old) {
// 	return pthread_sigmask(SIG_SETMASK, old, NULL);
// }
import "C"

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// withoutProfSignal runs f, a call into TensorFlow, on one OS thread with SIGPROF
// blocked, and returns the CPU time that thread spent in f. Threads inherit their
// creator's signal mask, so every thread TensorFlow starts inside f (its inter- and
// intra-op pools start with the first session) blocks SIGPROF too.
//
// Go's CPU profiler (/debug/pprof/profile, go test -cpuprofile) uses SIGPROF. Delivered
// to TensorFlow's own threads it corrupts the C heap within seconds under load ("malloc():
// unaligned tcache chunk detected", "corrupted size vs. prev_size"); with it blocked
// there, a profile is safe to take. The cost: TensorFlow's worker threads go unsampled,
// so a profile shows Go's share of the CPU (and the cgo calls), not the model's.
// TestCPUProfileUnderLoad keeps it that way.
func withoutProfSignal(f func()) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// Recorded before the mask changes: a thread that blocks SIGPROF and is not
	// recorded here is one of TensorFlow's (see poolCPU).
	if tid := unix.Gettid(); !isGoCaller(tid) {
		goCallers.Store(tid, struct{}{})
	}
	var old C.sigset_t
	C.atelier_block_sigprof(&old)
	defer C.atelier_restore_sigmask(&old)
	start := threadCPU()
	f()
	return threadCPU() - start
}

// threadCPU is the calling OS thread's CPU time (0 if the clock cannot be read).
func threadCPU() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// callerCPU sums the CPU time Go's threads spent inside session runs.
var callerCPU atomic.Int64

// goCallers holds the thread IDs of Go's threads that have called into TensorFlow.
var goCallers sync.Map

func isGoCaller(tid int) bool {
	_, ok := goCallers.Load(tid)
	return ok
}
