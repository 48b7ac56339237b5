package models

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/precision"
	"github.com/atelier-vision/atelier/internal/tensor"
	"github.com/atelier-vision/atelier/internal/testenv"
)

// fakeEngine answers a classifier's or generator's contract with zeros and records
// whether it was closed.
type fakeEngine struct {
	classes int
	mu      sync.Mutex
	closed  bool
	runs    int
}

func (e *fakeEngine) Run(_ context.Context, _ string, in map[string]*tensor.Tensor, _ []string) (map[string]*tensor.Tensor, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, tensor.ErrClosed
	}
	e.runs++
	if im, ok := in["images"]; ok {
		n := im.Shape[0]
		return map[string]*tensor.Tensor{"probabilities": {DType: tensor.Float32, Shape: []int64{n, int64(e.classes)}, Float32: make([]float32, int(n)*e.classes)}}, nil
	}
	n := in["labels"].Shape[0]
	return map[string]*tensor.Tensor{"images": {DType: tensor.Uint8, Shape: []int64{n, 28, 28, 1}, Uint8: make([]uint8, int(n)*28*28)}}, nil
}

func (e *fakeEngine) Close() error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	return nil
}

func (e *fakeEngine) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

func classifierSig() []tensor.Signature {
	return []tensor.Signature{{Name: ServingSignature,
		Inputs:  []tensor.Info{{Key: "images", DType: tensor.Uint8, Shape: []int64{-1, 28, 28, 1}}},
		Outputs: []tensor.Info{{Key: "probabilities", DType: tensor.Float32, Shape: []int64{-1, 10}}}}}
}

func generatorSig() []tensor.Signature {
	return []tensor.Signature{{Name: ServingSignature,
		Inputs:  []tensor.Info{{Key: "labels", DType: tensor.Int32, Shape: []int64{-1}}, {Key: "z", DType: tensor.Float32, Shape: []int64{-1, 64}}},
		Outputs: []tensor.Info{{Key: "images", DType: tensor.Uint8, Shape: []int64{-1, 28, 28, 1}}}}}
}

// fakeLoader reads a version's saved_model.pb as a word: classifier, generator,
// unknown (a signature of no role) or anything else (a corrupt file). It keeps every
// engine it made, by folder, so tests can check they were closed.
type fakeLoader struct {
	mu      sync.Mutex
	engines map[string]*fakeEngine
}

func (f *fakeLoader) load(dir string, setting precision.Setting) (Loaded, error) {
	e, sigs, err := f.open(dir)
	p := precision.FP32
	if setting == precision.Setting(precision.BF16) {
		p = precision.BF16
	}
	return Loaded{Engine: e, Signatures: sigs, Precision: p}, err
}

func (f *fakeLoader) open(dir string) (tensor.Engine, []tensor.Signature, error) {
	b, err := os.ReadFile(filepath.Join(dir, "saved_model.pb"))
	if err != nil {
		return nil, nil, err
	}
	e := &fakeEngine{classes: 10}
	f.mu.Lock()
	if f.engines == nil {
		f.engines = map[string]*fakeEngine{}
	}
	f.engines[dir] = e
	f.mu.Unlock()
	switch strings.TrimSpace(string(b)) {
	case "classifier":
		return e, classifierSig(), nil
	case "generator":
		return e, generatorSig(), nil
	case "unknown":
		return e, []tensor.Signature{{Name: ServingSignature}}, nil
	}
	return nil, nil, errors.New("parse saved_model.pb: corrupt protobuf")
}

func (f *fakeLoader) engine(t *testing.T, dir string) *fakeEngine {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.engines[dir]
	if e == nil {
		t.Fatalf("%s was never loaded", dir)
	}
	return e
}

// writeVersion writes root/name/version as a complete fake SavedModel whose
// saved_model.pb holds content, with labels (none if empty).
func writeVersion(t *testing.T, root, nameVersion, content string, labels ...string) string {
	t.Helper()
	dir := filepath.Join(root, nameVersion)
	if err := os.MkdirAll(filepath.Join(dir, "variables"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "assets"), 0o755)
	os.WriteFile(filepath.Join(dir, "variables", "variables.index"), []byte("index"), 0o644)
	if err := os.WriteFile(filepath.Join(dir, "saved_model.pb"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if len(labels) > 0 {
		os.WriteFile(filepath.Join(dir, "assets", "labels.txt"), []byte(strings.Join(labels, "\n")+"\n"), 0o644)
	}
	return dir
}

// tenLabels are as many labels as the fake classifier has classes.
var tenLabels = strings.Split("a b c d e f g h i j", " ")

type managerFixture struct {
	t      *testing.T
	root   string
	loader *fakeLoader
	m      *Manager
	log    *testenv.Buffer
}

// logText returns what the manager has logged.
func (f *managerFixture) logText() string {
	return f.log.String()
}

// startManager starts a manager on root with a fake loader and WarmUp at batch 4.
func startManager(t *testing.T, root, config string) (*managerFixture, error) {
	t.Helper()
	f := &managerFixture{t: t, root: root, loader: &fakeLoader{}, log: &testenv.Buffer{}}
	opts := ManagerOptions{Root: root, Load: f.loader.load, Settle: time.Millisecond,
		Warm: func(ctx context.Context, m *Model) error { return WarmUp(ctx, m, 4) },
		Log:  slog.New(slog.NewTextHandler(f.log, nil))}
	if config != "" {
		opts.ConfigPath = filepath.Join(t.TempDir(), "models.conf")
		os.WriteFile(opts.ConfigPath, []byte(config), 0o644)
	}
	m, err := NewManager(opts)
	if err != nil {
		return nil, err
	}
	f.m = m
	t.Cleanup(m.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return f, m.Start(ctx)
}

func mustStart(t *testing.T, root, config string) *managerFixture {
	t.Helper()
	f, err := startManager(t, root, config)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// poll runs two scans, as two polls would, and waits for the loads they start.
func (f *managerFixture) poll() {
	f.t.Helper()
	for range 2 {
		if _, err := f.m.scan(); err != nil {
			f.t.Fatal(err)
		}
	}
	f.idle()
}

func (f *managerFixture) idle() {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.m.WaitIdle(ctx); err != nil {
		f.t.Fatal(err)
	}
}

// states returns a model's versions and states, as "3:AVAILABLE 2:UNLOADING".
func (f *managerFixture) states(name string) string {
	var parts []string
	for _, st := range f.m.Status(name) {
		for _, v := range st.Versions {
			parts = append(parts, strings.Join([]string{itoa(v.Version), v.State.String()}, ":"))
		}
	}
	return strings.Join(parts, " ")
}

// waitStates waits up to 5s for a model's states to be want.
func (f *managerFixture) waitStates(name, want string) {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.states(name) != want {
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: got states %q, want %q", name, f.states(name), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// isClosed reports whether Close has begun.
func (m *Manager) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}
