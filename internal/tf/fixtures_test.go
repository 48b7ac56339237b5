package tf

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/atelier-vision/atelier/internal/tensor"
	"github.com/atelier-vision/atelier/internal/testenv"
)

// The test models are written by testdata/make_models.py with the project's Python
// TensorFlow, once per test binary, together with Python's outputs for fixed inputs.

var fixture struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	if os.Getenv("TF_CPP_MIN_LOG_LEVEL") == "" {
		os.Setenv("TF_CPP_MIN_LOG_LEVEL", "2")
	}
	code := m.Run()
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

// fixtures returns the folder holding affine/, generator/ and expected.json, built
// once with the project's Python (testenv.Python: skipped without it, failed under
// CI=true).
func fixtures(t testing.TB) string {
	t.Helper()
	py := testenv.Python(t)
	fixture.once.Do(func() { fixture.dir, fixture.err = buildFixtures(py) })
	if fixture.err != nil {
		t.Fatal(fixture.err)
	}
	return fixture.dir
}

func buildFixtures(py string) (string, error) {
	dir, err := os.MkdirTemp("", "atelier-tf-test-")
	if err != nil {
		return "", err
	}
	cmd := exec.Command(py, filepath.Join("testdata", "make_models.py"), dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return dir, fmt.Errorf("%s testdata/make_models.py: %v\n%s", py, err, out)
	}
	return dir, nil
}

type jsonTensor struct {
	DType string    `json:"dtype"`
	Shape []int64   `json:"shape"`
	Data  []float64 `json:"data"`
}

func (j jsonTensor) toTensor(t testing.TB) *tensor.Tensor {
	t.Helper()
	var (
		x   *tensor.Tensor
		err error
	)
	switch tensor.DType(j.DType) {
	case tensor.Uint8:
		x, err = tensor.NewUint8(j.Shape, convert[uint8](j.Data))
	case tensor.Int32:
		x, err = tensor.NewInt32(j.Shape, convert[int32](j.Data))
	case tensor.Int64:
		x, err = tensor.NewInt64(j.Shape, convert[int64](j.Data))
	case tensor.Float32:
		x, err = tensor.NewFloat32(j.Shape, convert[float32](j.Data))
	default:
		t.Fatalf("expected.json: unsupported dtype %q", j.DType)
	}
	if err != nil {
		t.Fatalf("expected.json: %v", err)
	}
	return x
}

func convert[E uint8 | int32 | int64 | float32](f []float64) []E {
	out := make([]E, len(f))
	for i, v := range f {
		out[i] = E(v)
	}
	return out
}

type runCase struct {
	Inputs  map[string]jsonTensor `json:"inputs"`
	Outputs map[string]jsonTensor `json:"outputs"`
}

type expected struct {
	Affine    map[string]runCase `json:"affine"`
	Generator map[string]runCase `json:"generator"`
	Resize    []struct {
		In  jsonTensor `json:"in"`
		Out jsonTensor `json:"out"`
	} `json:"resize"`
}

func readExpected(t testing.TB) expected {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures(t), "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e expected
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("expected.json: %v", err)
	}
	return e
}

func loadModel(t testing.TB, name string) *Model {
	t.Helper()
	m, err := Load(filepath.Join(fixtures(t), name), Options{IntraOpThreads: 1, InterOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// sameTensor fails t unless got equals want: same dtype and shape, integers equal,
// floats within tol.
func sameTensor(t testing.TB, name string, got, want *tensor.Tensor, tol float64) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: got no tensor, want %s %v", name, want.DType, want.Shape)
	}
	if got.DType != want.DType || fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
		t.Fatalf("%s: got %s %v, want %s %v", name, got.DType, got.Shape, want.DType, want.Shape)
	}
	g, w := values(got), values(want)
	for i := range w {
		if math.Abs(g[i]-w[i]) > tol {
			t.Fatalf("%s[%d]: got %v, want %v (tolerance %g)", name, i, g[i], w[i], tol)
		}
	}
}

func values(x *tensor.Tensor) []float64 {
	out := make([]float64, x.Len())
	for i := range out {
		switch x.DType {
		case tensor.Uint8:
			out[i] = float64(x.Uint8[i])
		case tensor.Int32:
			out[i] = float64(x.Int32[i])
		case tensor.Int64:
			out[i] = float64(x.Int64[i])
		case tensor.Float32:
			out[i] = float64(x.Float32[i])
		}
	}
	return out
}
