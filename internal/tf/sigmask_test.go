package tf

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"sync"
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
