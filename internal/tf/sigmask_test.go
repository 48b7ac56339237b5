package tf

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/tensor"
	"github.com/atelier-vision/atelier/internal/testenv"
)

// profileChildEnv marks the child process TestCPUProfileUnderLoad starts.
const profileChildEnv = "ATELIER_TF_PROFILE_CHILD"

// TestCPUProfileUnderLoad takes a CPU profile while four goroutines run the embedded
// classifier flat out, in a child process: when SIGPROF reaches TensorFlow's threads,
// glibc aborts the process within seconds ("corrupted size vs. prev_size") instead of
// failing a test.
func TestCPUProfileUnderLoad(t *testing.T) {
	if os.Getenv(profileChildEnv) != "" {
		profileUnderLoad(t, os.Getenv(profileChildEnv))
		return
	}
	dir := filepath.Join(testenv.ModelDir(t, "classifier"), "classifier", "1")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCPUProfileUnderLoad$", "-test.v")
	cmd.Env = append(os.Environ(), profileChildEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the profiled process failed: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
}

func profileUnderLoad(t *testing.T, dir string) {
	m, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var prof struct{ n int }
	w := writerFunc(func(p []byte) (int, error) { prof.n += len(p); return len(p), nil })
	if err := pprof.StartCPUProfile(w); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(8 * time.Second)
	var wg sync.WaitGroup
	runs := make([]int, 4)
	for g := range runs {
		wg.Go(func() {
			n := 1 + 7*g // batches of 1, 8, 15 and 22
			in, _ := tensor.NewUint8([]int64{int64(n), 28, 28, 1}, make([]uint8, n*28*28))
			for time.Now().Before(end) {
				if _, err := m.Run(context.Background(), "serving_default", map[string]*tensor.Tensor{"images": in}, nil); err != nil {
					t.Error(err)
					return
				}
				runs[g]++
			}
		})
	}
	wg.Wait()
	pprof.StopCPUProfile()
	t.Logf("%v runs per goroutine under the CPU profiler; profile %d bytes", runs, prof.n)
	if prof.n == 0 {
		t.Fatal("the profile is empty")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestStatCPU(t *testing.T) {
	// Field 2 holds spaces and a ')'; utime 250 and stime 50 ticks.
	line := []byte("4242 (tf_Compute) x)) S 1 4242 4242 0 -1 4194368 10 0 0 0 250 50 0 0 20 0 30 0 1 0 0")
	if got, want := statCPU(line), 300*clockTick; got != want {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := statCPU([]byte("garbage")); got != 0 {
		t.Fatalf("garbage: got %v, want 0", got)
	}
}

func TestBlocksSIGPROF(t *testing.T) {
	for status, want := range map[string]bool{
		"Name:\tx\nSigPnd:\t0000000000000000\nSigBlk:\t0000000004000000\nSigIgn:\t0\n": true,
		"Name:\tx\nSigBlk:\t0000000000000000\n":                                        false,
		"Name:\tx\nSigBlk:\tfffffffffbffffff\n":                                        false,
		"Name:\tx\n":                                                                   false,
	} {
		if got := blocksSIGPROF([]byte(status)); got != want {
			t.Errorf("blocksSIGPROF(%q) = %v, want %v", status, got, want)
		}
	}
}

// TestSessionCPUCountsRuns checks that session runs add to SessionCPU and that it
// stays within the process's own CPU time.
func TestSessionCPUCountsRuns(t *testing.T) {
	m := loadModel(t, "affine")
	before := SessionCPU()
	in, _ := tensor.NewUint8([]int64{1, 4, 4, 1}, make([]uint8, 16))
	for range 2000 {
		if _, err := m.Run(context.Background(), "serving_default", map[string]*tensor.Tensor{"images": in}, nil); err != nil {
			t.Fatal(err)
		}
	}
	after := SessionCPU()
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	process := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if after <= before || after > process+time.Second {
		t.Fatalf("SessionCPU went from %v to %v over 2,000 runs (process CPU %v)", before, after, process)
	}
	t.Logf("2,000 runs of the affine fixture: %v of session CPU", after-before)
}
