package tf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/tensor"
	tfb "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/core/framework/graph_go_proto"
	"github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_shape_go_proto"
	"github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	corepb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"github.com/galeone/tensorflow/tensorflow/go/op"
	"google.golang.org/protobuf/proto"
)

// These tests probe the cgo boundary where a mistake does not fail a test but ends
// the process: TensorFlow aborts (a CHECK) or reads through a bad pointer. Such cases
// run in a child process (runChild), so that a regression is reported as a failure
// with TensorFlow's last words instead of killing the test binary.

// childEnv marks the child process; its value is the fixtures folder (or "-").
const childEnv = "ATELIER_TF_TEST_CHILD"

// runChild runs test (a TestXxxChild, which skips itself in a normal run) in a new
// process of this test binary and fails t if it does not pass.
func runChild(t *testing.T, test, fixtures string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+fixtures)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+test)) {
		// TensorFlow's last words and the test's own lines, not the goroutine dump.
		var keep []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "Check failed") || strings.Contains(l, "F0000") || strings.HasPrefix(l, "SIG") ||
				strings.HasPrefix(l, "panic:") || strings.Contains(l, "_test.go:") && !strings.Contains(l, "+0x") || strings.Contains(l, "--- ") {
				keep = append(keep, l)
			}
		}
		t.Fatalf("%s in a child process: %v\n%s", test, err, strings.Join(keep, "\n"))
	}
	t.Logf("%s", bytes.TrimSpace(out))
}

// inChild skips t unless it runs in runChild's process, and returns the fixtures
// folder passed to it.
func inChild(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(childEnv)
	if dir == "" {
		t.Skip("runs in a child process of the test that names it")
	}
	return dir
}

// TestShapesTensorFlowWouldAbortOn feeds shapes TensorFlow's TensorShape cannot hold.
// It does not refuse them, it aborts the process (tensor_shape.cc: "Check failed:
// ... Encountered overflow when multiplying", "Too many dimensions in tensor"), and
// before they were refused on the Go side each of these did: a shape whose product
// wraps to the tensor's element count passed tensor.Validate, and nothing looked at
// the rank. Each must now be an error wrapping tensor.ErrBadInput.
func TestShapesTensorFlowWouldAbortOn(t *testing.T) {
	runChild(t, "TestShapesTensorFlowWouldAbortOnChild", fixtures(t))
}

func TestShapesTensorFlowWouldAbortOnChild(t *testing.T) {
	dir := inChild(t)
	m, err := Load(filepath.Join(dir, "affine"), Options{IntraOpThreads: 1, InterOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	run := func(in *tensor.Tensor) error {
		_, err := m.Run(context.Background(), "serving_default", map[string]*tensor.Tensor{"images": in}, nil)
		return err
	}
	ones := make([]int64, maxDims+1)
	for i := range ones {
		ones[i] = 1
	}
	r, err := NewResizer()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tests := []struct {
		name string
		err  func() error
	}{
		// 2^60 x 4 x 4 x 1 = 2^64 wraps to 0: an empty tensor, by the count.
		{"Run: rows x 16 wraps to 0", func() error {
			return run(&tensor.Tensor{DType: tensor.Uint8, Shape: []int64{1 << 60, 4, 4, 1}})
		}},
		// (2^60 + 1) x 16 wraps to 16, which one image fills.
		{"Run: rows x 16 wraps to 16", func() error {
			return run(&tensor.Tensor{DType: tensor.Uint8, Shape: []int64{1<<60 + 1, 4, 4, 1}, Uint8: make([]uint8, 16)})
		}},
		{"toTF: overflow before a 0", func() error {
			_, err := toTF(&tensor.Tensor{DType: tensor.Float32, Shape: []int64{1 << 62, 1 << 62, 0}})
			return err
		}},
		{"toTF: 255 dimensions", func() error {
			_, err := toTF(&tensor.Tensor{DType: tensor.Uint8, Shape: ones, Uint8: []uint8{1}})
			return err
		}},
		// h*w*c wraps to 0 = len(nil): Resize's own size check passed it.
		{"Resize: h x w wraps to 0", func() error {
			_, err := r.Resize(nil, 1<<32, 1<<32, 1, 2, 2)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.err(); !errors.Is(err, tensor.ErrBadInput) {
				t.Fatalf("got %v, want an error wrapping ErrBadInput", err)
			} else {
				t.Log(err)
			}
		})
	}
	// The model still runs.
	in, _ := tensor.NewUint8([]int64{2, 4, 4, 1}, make([]uint8, 32))
	if err := run(in); err != nil {
		t.Fatal(err)
	}
}

// TestTensorWithoutBufferIsRefused makes TensorFlow's allocation of an input fail
// (the address space is capped just above what the process maps). TF_AllocateTensor
// then returns a tensor with no buffer rather than an error, the bindings' ReadTensor
// copies nothing into it and reports success, and a session fed that tensor reads
// through a null pointer: SIGSEGV, seen with a reduce_max model on a 1 GiB input.
// toTF must notice and refuse it.
func TestTensorWithoutBufferIsRefused(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory makes the address-space cap unpredictable")
	}
	runChild(t, "TestTensorWithoutBufferIsRefusedChild", "-")
}

func TestTensorWithoutBufferIsRefusedChild(t *testing.T) {
	inChild(t)
	const n = 512 << 20
	in := &tensor.Tensor{DType: tensor.Uint8, Shape: []int64{n}, Uint8: make([]uint8, n)} // never touched: not resident
	// A small tensor first, so that TensorFlow's allocator is set up before the cap.
	small, err := toTF(&tensor.Tensor{DType: tensor.Uint8, Shape: []int64{4}, Uint8: []uint8{1, 2, 3, 4}})
	if err != nil {
		t.Fatal(err)
	}
	freeTensor(small)
	limit := vmSize(t) + 256<<20
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: limit, Max: ^uint64(0)}); err != nil {
		t.Skipf("cannot cap the address space: %v", err)
	}
	out, err := toTF(in)
	if err == nil {
		defer freeTensor(out)
		got := func() (n int) {
			defer func() {
				if recover() != nil {
					n = 0 // an older tensorBytes panicked on a missing buffer
				}
			}()
			return len(tensorBytes(out))
		}()
		if got != n {
			t.Fatalf("toTF returned a tensor with a %d-byte buffer for %d bytes, and no error", got, n)
		}
		t.Skip("TensorFlow could allocate 512 MiB under the cap; nothing to check")
	}
	if !strings.Contains(err.Error(), "could not allocate") {
		t.Fatalf("got %v, want a failed allocation", err)
	}
	t.Log(err)
}

// vmSize returns the process's mapped address space in bytes.
func vmSize(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("cannot read /proc/self/status: %v", err)
	}
	_, rest, _ := bytes.Cut(b, []byte("\nVmSize:"))
	f := strings.Fields(string(rest))
	if len(f) < 1 {
		t.Skip("no VmSize in /proc/self/status")
	}
	kb, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		t.Skip(err)
	}
	return kb << 10
}

// TestZeroSizeTensorsCrossTheBoundary runs batches of 0 rows and converts tensors
// with a dimension of 0: TensorFlow's buffer for them may be null, and nothing may
// read or write through it. Outputs keep their shape and a non-nil, empty slice.
func TestZeroSizeTensorsCrossTheBoundary(t *testing.T) {
	for _, x := range []*tensor.Tensor{
		{DType: tensor.Uint8, Shape: []int64{0}},
		{DType: tensor.Float32, Shape: []int64{3, 0, 2}},
		{DType: tensor.Int32, Shape: []int64{0, 0}, Int32: []int32{}},
		{DType: tensor.Int64, Shape: []int64{1 << 40, 0}},
	} {
		ft, err := toTF(x)
		if err != nil {
			t.Fatalf("toTF(%s %v): %v", x.DType, x.Shape, err)
		}
		back, err := fromTF(ft)
		freeTensor(ft)
		if err != nil {
			t.Fatalf("fromTF(%s %v): %v", x.DType, x.Shape, err)
		}
		if back.DType != x.DType || fmt.Sprint(back.Shape) != fmt.Sprint(x.Shape) || back.Len() != 0 || back.Validate() != nil {
			t.Fatalf("round trip of %s %v: got %s %v with %d elements", x.DType, x.Shape, back.DType, back.Shape, back.Len())
		}
	}

	affine, gen := loadModel(t, "affine"), loadModel(t, "generator")
	empty := &tensor.Tensor{DType: tensor.Uint8, Shape: []int64{0, 4, 4, 1}}
	before := freedTensors.Load()
	out, err := affine.Run(context.Background(), "serving_default", map[string]*tensor.Tensor{"images": empty}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"logits", "probabilities"} {
		if o := out[k]; o == nil || fmt.Sprint(o.Shape) != "[0 3]" || o.Float32 == nil || o.Len() != 0 {
			t.Fatalf("%s of 0 images: got %+v, want float32 [0 3]", k, o)
		}
	}
	out, err = affine.Run(context.Background(), "total", map[string]*tensor.Tensor{"images": empty}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out["total"].Float32[0] != 0 || out["count"].Int64[0] != 0 {
		t.Fatalf("total of 0 images: got %v and count %v, want 0 and 0", out["total"].Float32, out["count"].Int64)
	}
	out, err = gen.Run(context.Background(), "serving_default", map[string]*tensor.Tensor{
		"z":      {DType: tensor.Float32, Shape: []int64{0, 8}},
		"labels": {DType: tensor.Int32, Shape: []int64{0}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if im := out["images"]; fmt.Sprint(im.Shape) != "[0 4 4 1]" || im.Uint8 == nil || im.Len() != 0 {
		t.Fatalf("images of 0 latents: got %+v, want uint8 [0 4 4 1]", im)
	}
	// Inputs and outputs: 1+2, 1+2, 2+2.
	if got := freedTensors.Load() - before; got != 10 {
		t.Fatalf("%d tensors freed, want 10", got)
	}
}

// TestFailingRunsDoNotLeak runs TensorFlow into errors many times (the batch sizes of
// the inputs disagree; a label is outside the embedding table) with 256 KiB of input
// each, and checks that every input was freed by Run itself and that RSS stays flat
// with the garbage collector off, so that no finalizer can hide a leak. Statuses are
// freed by the bindings' finalizers only, but they are bytes.
func TestFailingRunsDoNotLeak(t *testing.T) {
	m := loadModel(t, "generator")
	const rows = 8192 // 8192 x 8 floats = 256 KiB
	z, _ := tensor.NewFloat32([]int64{rows, 8}, make([]float32, rows*8))
	short, _ := tensor.NewInt32([]int64{rows - 1}, make([]int32, rows-1))
	bad := make([]int32, rows)
	bad[rows/2] = 99
	outOfRange, _ := tensor.NewInt32([]int64{rows}, bad)
	cases := []map[string]*tensor.Tensor{{"z": z, "labels": short}, {"z": z, "labels": outOfRange}}
	fail := func(i int) {
		_, err := m.Run(context.Background(), "serving_default", cases[i%2], nil)
		if !errors.Is(err, tensor.ErrBadInput) {
			t.Fatalf("run %d: got %v, want ErrBadInput from TensorFlow", i, err)
		}
	}
	for i := range 50 { // warm TensorFlow's allocations up
		fail(i)
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	const runs = 2000 // 500 MiB of inputs
	start, freed := rss(t), freedTensors.Load()
	for i := range runs {
		fail(i)
	}
	grew := rss(t) - start
	t.Logf("RSS grew by %d KiB over %d failing runs", grew>>10, runs)
	if got, want := freedTensors.Load()-freed, int64(2*runs); got != want {
		t.Errorf("%d tensors freed by %d failing runs, want %d (both inputs of every run)", got, runs, want)
	}
	if limit := int64(64 << 20); grew > limit {
		t.Errorf("RSS grew by %d MiB over %d failing runs of 256 KiB inputs, want under %d MiB", grew>>20, runs, limit>>20)
	}
}

// TestCloseWhileRunsInFlight closes a model while four goroutines run it without
// pause on inputs large enough that runs are always under way. Close must wait for the
// session runs in flight (the bindings' Session.Close does, before TF_DeleteSession);
// every run either answers correctly or fails with tensor.ErrClosed, never with
// another error or a crash; Close returns nil; and runs after it fail with ErrClosed.
// Under -race this also checks the closed flag and the session's teardown.
func TestCloseWhileRunsInFlight(t *testing.T) {
	e := readExpected(t)
	m := loadModel(t, "generator")
	c := e.Generator["serving_default"]
	z0, l0 := c.Inputs["z"].toTensor(t), c.Inputs["labels"].toTensor(t)
	want := c.Outputs["images"].toTensor(t)
	// 512 copies of the fixed batch: each run has the known answer, repeated.
	const copies = 512
	z := &tensor.Tensor{DType: tensor.Float32, Shape: []int64{copies * z0.Shape[0], 8}}
	l := &tensor.Tensor{DType: tensor.Int32, Shape: []int64{copies * l0.Shape[0]}}
	for range copies {
		z.Float32 = append(z.Float32, z0.Float32...)
		l.Int32 = append(l.Int32, l0.Int32...)
	}
	inputs := map[string]*tensor.Tensor{"z": z, "labels": l}
	var ok, closed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	started := make(chan struct{}, 4)
	for range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				got, err := m.Run(context.Background(), "serving_default", inputs, []string{"images"})
				if i == 0 {
					started <- struct{}{}
				}
				switch {
				case errors.Is(err, tensor.ErrClosed):
					closed.Add(1)
					return
				case err != nil:
					errs <- fmt.Errorf("run %d: %w", i, err)
					return
				}
				im := got["images"].Uint8
				if len(im) != copies*len(want.Uint8) || !bytes.Equal(im[len(im)-len(want.Uint8):], want.Uint8) {
					errs <- fmt.Errorf("run %d: wrong images", i)
					return
				}
				ok.Add(1)
			}
		})
	}
	for range 4 {
		<-started
	}
	time.Sleep(50 * time.Millisecond)
	if err := m.Close(); err != nil {
		t.Errorf("Close under load: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d runs answered, %d refused as closed", ok.Load(), closed.Load())
	if closed.Load() != 4 {
		t.Errorf("%d goroutines saw ErrClosed, want 4", closed.Load())
	}
	if _, err := m.Run(context.Background(), "serving_default", inputs, nil); !errors.Is(err, tensor.ErrClosed) {
		t.Fatalf("Run after Close: got %v, want ErrClosed", err)
	}
}

// writeLyingModel writes a SavedModel built in Go whose serving signature says more
// than the graph does: outputs of types a tensor.Tensor cannot hold (string, bool,
// float64), one whose dtype it misstates and one whose shape it misstates; and a
// second signature, "lies_input", that misstates its input's dtype.
func writeLyingModel(t *testing.T) string {
	t.Helper()
	s := op.NewScope()
	x := op.Placeholder(s.SubScope("x"), tfb.Float, op.PlaceholderShape(tfb.MakeShape(-1, 2)))
	outs := map[string]tfb.Output{
		"string":     op.Const(s.SubScope("str"), "not a number"),
		"bool":       op.Greater(s.SubScope("bool"), x, op.Const(s.SubScope("zero"), float32(0))),
		"float64":    op.Cast(s.SubScope("f64"), x, tfb.Double),
		"lies_dtype": op.Cast(s.SubScope("i64"), x, tfb.Int64),
		"lies_shape": op.Reshape(s.SubScope("flat"), x, op.Const(s.SubScope("minus1"), []int32{-1})),
		"ok":         op.Identity(s.SubScope("ok"), x),
	}
	g, err := s.Finalize()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := g.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	gd := &graph_go_proto.GraphDef{}
	if err := proto.Unmarshal(buf.Bytes(), gd); err != nil {
		t.Fatal(err)
	}
	info := func(o tfb.Output, dt types_go_proto.DataType, dims ...int64) *corepb.TensorInfo {
		shape := &tensor_shape_go_proto.TensorShapeProto{}
		for _, d := range dims {
			shape.Dim = append(shape.Dim, &tensor_shape_go_proto.TensorShapeProto_Dim{Size: d})
		}
		return &corepb.TensorInfo{Encoding: &corepb.TensorInfo_Name{Name: fmt.Sprintf("%s:%d", o.Op.Name(), o.Index)},
			Dtype: dt, TensorShape: shape}
	}
	serving := &corepb.SignatureDef{MethodName: "tensorflow/serving/predict",
		Inputs: map[string]*corepb.TensorInfo{"x": info(x, types_go_proto.DataType_DT_FLOAT, -1, 2)},
		Outputs: map[string]*corepb.TensorInfo{
			"string":     info(outs["string"], types_go_proto.DataType_DT_STRING),
			"bool":       info(outs["bool"], types_go_proto.DataType_DT_BOOL, -1, 2),
			"float64":    info(outs["float64"], types_go_proto.DataType_DT_DOUBLE, -1, 2),
			"lies_dtype": info(outs["lies_dtype"], types_go_proto.DataType_DT_FLOAT, -1, 2),
			"lies_shape": info(outs["lies_shape"], types_go_proto.DataType_DT_FLOAT, -1, 7),
			"ok":         info(outs["ok"], types_go_proto.DataType_DT_FLOAT, -1, 2),
		}}
	liesInput := &corepb.SignatureDef{MethodName: "tensorflow/serving/predict",
		Inputs:  map[string]*corepb.TensorInfo{"x": info(x, types_go_proto.DataType_DT_UINT8, -1, 2)},
		Outputs: map[string]*corepb.TensorInfo{"ok": info(outs["ok"], types_go_proto.DataType_DT_UINT8, -1, 2)}}
	sm := &corepb.SavedModel{SavedModelSchemaVersion: 1, MetaGraphs: []*corepb.MetaGraphDef{{
		MetaInfoDef:  &corepb.MetaGraphDef_MetaInfoDef{Tags: []string{"serve"}},
		GraphDef:     gd,
		SignatureDef: map[string]*corepb.SignatureDef{"serving_default": serving, "lies_input": liesInput},
	}}}
	b, err := proto.Marshal(sm)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "saved_model.pb"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSignatureThatLies runs a SavedModel whose signature misstates its tensors. What
// comes back is what TensorFlow computed, read from TensorFlow's own dtype and shape
// (never the signature's), so no copy reads past a buffer: an output a tensor.Tensor
// cannot hold is an error, not a reinterpretation of its bytes; a misstated dtype or
// shape comes back as it really is, well formed; an input fed as the signature says
// but not as the graph wants is TensorFlow's INVALID_ARGUMENT. Every tensor fetched is
// freed on every one of these paths.
func TestSignatureThatLies(t *testing.T) {
	m, err := Load(writeLyingModel(t), Options{IntraOpThreads: 1, InterOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	x, _ := tensor.NewFloat32([]int64{3, 2}, []float32{-1, 2, 3, -4, 5, 6})
	in := map[string]*tensor.Tensor{"x": x}
	for _, key := range []string{"string", "bool", "float64"} {
		before := freedTensors.Load()
		_, err := m.Run(context.Background(), "serving_default", in, []string{key})
		if err == nil || !strings.Contains(err.Error(), "cannot hold") {
			t.Errorf("output %q: got %v, want an error saying a tensor cannot hold it", key, err)
		}
		if got := freedTensors.Load() - before; got != 2 {
			t.Errorf("output %q: %d tensors freed, want 2 (the input and the output)", key, got)
		}
	}
	before := freedTensors.Load()
	if _, err := m.Run(context.Background(), "serving_default", in, nil); err == nil {
		t.Error("all outputs: got no error, want one for the outputs a tensor cannot hold")
	}
	if got := freedTensors.Load() - before; got != 7 {
		t.Errorf("all outputs: %d tensors freed, want 7 (the input and six outputs)", got)
	}
	out, err := m.Run(context.Background(), "serving_default", in, []string{"lies_dtype", "lies_shape", "ok"})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"lies_dtype": "int64 [3 2]", "lies_shape": "float32 [6]", "ok": "float32 [3 2]"} {
		o := out[key]
		if got := fmt.Sprintf("%s %v", o.DType, o.Shape); got != want || o.Validate() != nil {
			t.Errorf("output %q: got %s (%v), want %s, well formed", key, got, o.Validate(), want)
		}
	}
	if got := out["lies_dtype"].Int64; fmt.Sprint(got) != "[-1 2 3 -4 5 6]" {
		t.Errorf("lies_dtype: got %v", got)
	}
	u8, _ := tensor.NewUint8([]int64{3, 2}, make([]uint8, 6))
	before = freedTensors.Load()
	if _, err := m.Run(context.Background(), "lies_input", map[string]*tensor.Tensor{"x": u8}, nil); !errors.Is(err, tensor.ErrBadInput) {
		t.Errorf("lies_input: got %v, want TensorFlow's INVALID_ARGUMENT as ErrBadInput", err)
	}
	if got := freedTensors.Load() - before; got != 1 {
		t.Errorf("lies_input: %d tensors freed, want 1 (the input)", got)
	}
	runtime.KeepAlive(m)
}
