package models

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/precision"
	"github.com/atelier-vision/atelier/internal/testenv"
)

// greyPNG encodes a w x h grey image.
func greyPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	b, err := imageio.EncodePNG(imageio.Image{Width: w, Height: h, Channels: 1, Pix: make([]uint8, w*h)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// failedBeside serves classifier 1, adds a version 2 that breaks, and checks that
// after polls scans 2 is FAILED and 1 serves on.
func failedBeside(t *testing.T, polls int, breaks func(v2 string)) (*managerFixture, *loadCounter, string) {
	t.Helper()
	root := t.TempDir()
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	f, loads := mustStartCounted(t, root, "")
	v2 := writeVersion(t, root, "classifier/2", "classifier", tenLabels...)
	breaks(v2)
	f.polls(polls)
	if got := f.states("classifier"); got != "2:FAILED 1:AVAILABLE" {
		t.Fatalf("states %q, want 2 FAILED and 1 serving", got)
	}
	return f, loads, v2
}

// retriedAfter fixes a FAILED version folder and checks that the polls load it again:
// the model's states become want, and dir was loaded twice in all.
func (f *managerFixture) retriedAfter(loads *loadCounter, dir, want, fix string, apply func()) {
	f.t.Helper()
	apply()
	f.polls(2)
	f.waitStates("classifier", want)
	if n := loads.count(dir); n != 2 {
		f.t.Errorf("%s was loaded %d times, want 2 (failed, then after %s)", dir, n, fix)
	}
}

// writeWarmup writes dir's assets.extra/warmup/name.
func writeWarmup(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, WarmupDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, WarmupDir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFailedWarmupIsRetriedWhenFixed: a version FAILED by its own warm-up request (a
// 10x10 image for a 28x28 model) is tried again once that file is fixed, although
// saved_model.pb, variables/ and labels.txt did not change.
func TestFailedWarmupIsRetriedWhenFixed(t *testing.T) {
	f, loads, v2 := failedBeside(t, 2, func(v2 string) { writeWarmup(t, v2, "a.png", greyPNG(t, 10, 10)) })
	f.polls(3)
	if n := loads.count(v2); n != 1 {
		t.Fatalf("the unchanged FAILED version was loaded %d times, want 1", n)
	}
	f.retriedAfter(loads, v2, "2:AVAILABLE", "the fix", func() { writeWarmup(t, v2, "a.png", greyPNG(t, 28, 28)) })
}

// TestWarmupFileStillChangingIsLeftAlone: a warm-up request copied in after the rest
// of the folder (or still being written) keeps the version out until it has stood
// still for a poll, so it is never read half-written.
func TestWarmupFileStillChangingIsLeftAlone(t *testing.T) {
	root := t.TempDir()
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	f, loads := mustStartCounted(t, root, "")
	full := greyPNG(t, 28, 28)
	v2 := writeVersion(t, root, "classifier/2", "classifier", tenLabels...)
	writeWarmup(t, v2, "a.png", full[:len(full)/2]) // half-written
	f.polls(1)
	writeWarmup(t, v2, "a.png", full)
	f.polls(1)
	if got, n := f.states("classifier"), loads.count(v2); got != "1:AVAILABLE" || n != 0 {
		t.Fatalf("states %q, %d loads of version 2: want it left alone while its warm-up file changes", got, n)
	}
	f.polls(1)
	f.waitStates("classifier", "2:AVAILABLE")
	// build-report.json (the precision gate's input) counts too.
	v3 := writeVersion(t, root, "classifier/3", "classifier", tenLabels...)
	f.polls(1)
	os.WriteFile(filepath.Join(v3, "build-report.json"), []byte(`{"bf16": {}}`), 0o644)
	f.polls(1)
	if n := loads.count(v3); n != 0 {
		t.Fatalf("version 3 was loaded while its build-report.json changed")
	}
	f.polls(1)
	f.waitStates("classifier", "3:AVAILABLE")
}

// TestFingerprintCoversTheWholeFolder: every file of the version folder counts, at any
// depth, and a special file outside the loader's files is described, not opened.
func TestFingerprintCoversTheWholeFolder(t *testing.T) {
	dir := writeVersion(t, t.TempDir(), "m/1", "classifier", tenLabels...)
	fp := func() string {
		t.Helper()
		s, err := fingerprint(dir)
		if err != nil || s == "" {
			t.Fatalf("fingerprint: %q, %v", s, err)
		}
		return s
	}
	last := fp()
	for _, change := range []func(){
		func() { writeWarmup(t, dir, "a.png", []byte("x")) },
		func() { os.WriteFile(filepath.Join(dir, "build-report.json"), []byte("{}"), 0o644) },
		func() { os.MkdirAll(filepath.Join(dir, "assets.extra", "deep", "er"), 0o755) },
		func() { os.WriteFile(filepath.Join(dir, "assets.extra", "deep", "er", "f"), []byte("y"), 0o644) },
		func() { os.WriteFile(filepath.Join(dir, "assets", "vocab.txt"), []byte("z"), 0o644) },
		func() { os.Chmod(filepath.Join(dir, "build-report.json"), 0o600) },
		func() { os.Symlink(".", filepath.Join(dir, "assets.extra", "loop")) }, // not followed
	} {
		change()
		if now := fp(); now == last {
			t.Fatalf("a change left the fingerprint as it was: %s", now)
		} else {
			last = now
		}
	}
}

// TestLoaderPanicFailsTheVersion: a panic in the loader goroutine (a Loader's or a
// warm-up's) fails that version with the panic as its error; the manager keeps
// serving and loads the next version.
func TestLoaderPanicFailsTheVersion(t *testing.T) {
	for _, where := range []string{"load", "warm", "reload"} {
		t.Run(where, func(t *testing.T) {
			root := t.TempDir()
			writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
			fl := &fakeLoader{}
			var reloads int
			config := filepath.Join(t.TempDir(), "models.conf")
			if err := os.WriteFile(config, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := NewManager(ManagerOptions{Root: root, Settle: time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
				ConfigPath: config,
				Load: func(dir string, s precision.Setting) (Loaded, error) {
					if where == "load" && strings.HasSuffix(dir, "2") {
						panic("load exploded")
					}
					if where == "reload" && s == precision.Setting(precision.BF16) && strings.HasSuffix(dir, "1") {
						reloads++
						var nilMap map[string]int
						nilMap["x"]++ // a runtime error, not a panic(value)
					}
					return fl.load(dir, s)
				},
				Warm: func(ctx context.Context, m *Model) error {
					if where == "warm" && m.Version == 2 {
						panic("warm exploded")
					}
					return nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(m.Close)
			if err := m.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			f := &managerFixture{t: t, root: root, loader: fl, m: m, log: &testenv.Buffer{}}
			if where == "reload" {
				os.WriteFile(m.opts.ConfigPath, []byte("model classifier\n  precision bf16\n"), 0o644)
				if err := m.Reload(context.Background(), true); err != nil {
					t.Fatal(err)
				}
				if got := f.states("classifier"); got != "1:AVAILABLE" || reloads != 1 {
					t.Fatalf("states %q after %d reloads, want 1 serving on after its reload panicked", got, reloads)
				}
			} else {
				writeVersion(t, root, "classifier/2", "classifier", tenLabels...)
				f.polls(2)
				if got := f.states("classifier"); got != "2:FAILED 1:AVAILABLE" {
					t.Fatalf("states %q, want 2 FAILED and 1 serving", got)
				}
				st, _ := m.StatusOf("classifier")
				if e := st.Versions[0].Err; e == nil || !strings.Contains(e.Error(), where+" exploded") {
					t.Fatalf("version 2's error %v, want the panic", e)
				}
				// LoadModel waits on the loader goroutine: it answers, it does not hang.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if vs, err := m.LoadModel(ctx, "classifier", 2); err != nil || vs.State != StateFailed {
					t.Fatalf("LoadModel of the panicking version: %+v, %v; want FAILED", vs, err)
				}
			}
			// The loader goroutine lives on: a further version loads.
			writeVersion(t, root, "classifier/3", "classifier", tenLabels...)
			f.polls(2)
			f.waitStates("classifier", map[string]string{"reload": "3:AVAILABLE", "load": "3:AVAILABLE 2:FAILED", "warm": "3:AVAILABLE 2:FAILED"}[where])
		})
	}
}

// gatedLoader holds the loads and warm-ups of one version folder until the test lets
// each go, so that the states in between can be seen.
type gatedLoader struct {
	fl               *fakeLoader
	suffix           string
	loading, warming chan struct{} // a value when the gated load / warm-up begins
	load, warm       chan struct{} // closed to let it go on
}

func newGated(suffix string) *gatedLoader {
	return &gatedLoader{fl: &fakeLoader{}, suffix: suffix, loading: make(chan struct{}, 1), warming: make(chan struct{}, 1),
		load: make(chan struct{}), warm: make(chan struct{})}
}

func (g *gatedLoader) opts(root string) ManagerOptions {
	return ManagerOptions{Root: root, Settle: time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Load: func(dir string, s precision.Setting) (Loaded, error) {
			if strings.HasSuffix(dir, g.suffix) {
				g.loading <- struct{}{}
				<-g.load
			}
			return g.fl.load(dir, s)
		},
		Warm: func(ctx context.Context, m *Model) error {
			if strings.HasSuffix(m.Dir, g.suffix) {
				g.warming <- struct{}{}
				<-g.warm
			}
			return WarmUp(ctx, m, 4)
		}}
}

func waitFor(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not begin within 10 s", what)
	}
}

// TestStatesOnTheWayToTraffic holds a new version's load and then its warm-up: the
// states go 3:LOADING, 3:WARMING, 3:AVAILABLE, and until AVAILABLE version 0 stays on
// the old version and version 3 cannot be asked for by number. Then, with a call
// holding version 3, its folder (the model's last) is removed: it is UNLOADING, out of
// routing, until the call ends, and then the model is gone.
func TestStatesOnTheWayToTraffic(t *testing.T) {
	root := t.TempDir()
	writeVersion(t, root, "classifier/2", "classifier", tenLabels...)
	g := newGated(filepath.Join("classifier", "3"))
	m, err := NewManager(g.opts(root))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	t.Cleanup(func() { // a failing test must not leave the loader (and Close) blocked
		select {
		case <-g.load:
		default:
			close(g.load)
		}
		select {
		case <-g.warm:
		default:
			close(g.warm)
		}
	})
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := &managerFixture{t: t, root: root, loader: g.fl, m: m}
	repo := m.Repository()
	routes := func(when string) {
		t.Helper()
		if got, err := repo.Get(Spec{}, RoleClassifier); err != nil || got.Version != 2 {
			t.Fatalf("%s: version 0 is %v (%v), want the old version 2", when, got, err)
		}
		if got, err := repo.Get(Spec{Name: "classifier"}, RoleClassifier); err != nil || got.Version != 2 {
			t.Fatalf("%s: classifier's newest is %v (%v), want the old version 2", when, got, err)
		}
		if _, err := repo.Get(Spec{Name: "classifier", Version: 3}, RoleClassifier); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: version 3 by number: got %v, want NOT_FOUND", when, err)
		}
	}

	writeVersion(t, root, "classifier/3", "classifier", tenLabels...)
	for range 2 {
		if _, err := m.scan(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, g.loading, "version 3's load")
	f.waitStates("classifier", "3:LOADING 2:AVAILABLE")
	routes("LOADING")
	close(g.load)
	waitFor(t, g.warming, "version 3's warm-up")
	f.waitStates("classifier", "3:WARMING 2:AVAILABLE")
	routes("WARMING")
	close(g.warm)
	f.waitStates("classifier", "3:AVAILABLE")
	if got, err := repo.Get(Spec{}, RoleClassifier); err != nil || got.Version != 3 {
		t.Fatalf("after warm-up: version 0 is %v (%v), want 3", got, err)
	}

	held, release, err := repo.Acquire(Spec{Name: "classifier", Version: 3}, RoleClassifier)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	os.RemoveAll(filepath.Join(root, "classifier"))
	f.polls(1)
	f.waitStates("classifier", "3:UNLOADING")
	if _, err := repo.Get(Spec{Name: "classifier"}, RoleClassifier); !errors.Is(err, ErrNotFound) {
		t.Fatalf("while UNLOADING: got %v, want NOT_FOUND", err)
	}
	if _, err := held.Classify(context.Background(), make([]uint8, 28*28), 1); err != nil {
		t.Fatalf("the call holding the unloading version failed: %v", err)
	}
	release()
	f.waitStates("classifier", "")
	if !g.fl.engine(t, filepath.Join(root, "classifier", "3")).isClosed() {
		t.Fatal("version 3 is gone but its engine was not closed")
	}
}

// TestCopyInProgressAtStartIsNotLoaded: at start-up a version folder still being
// written (here a variables file growing) is not loaded half-way: Start looks twice,
// Settle apart, as an explicit rescan does, and serves what stood still; the polls
// load the new folder once the copy is done.
func TestCopyInProgressAtStartIsNotLoaded(t *testing.T) {
	root := t.TempDir()
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	v2 := writeVersion(t, root, "classifier/2", "classifier", tenLabels...)
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() { // the copy: a variables file that grows until stop
		defer close(stopped)
		data := filepath.Join(v2, "variables", "variables.data-00000-of-00001")
		for i := 1; ; i++ {
			os.WriteFile(data, make([]byte, i), 0o644)
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}()
	f := &managerFixture{t: t, root: root, loader: &fakeLoader{}, log: &testenv.Buffer{}}
	c := &loadCounter{n: map[string]int{}}
	m, err := NewManager(ManagerOptions{Root: root, Settle: 50 * time.Millisecond, Log: slog.New(slog.NewTextHandler(f.log, nil)),
		Load: func(dir string, s precision.Setting) (Loaded, error) {
			c.mu.Lock()
			c.n[dir]++
			c.mu.Unlock()
			return f.loader.load(dir, s)
		}})
	if err != nil {
		t.Fatal(err)
	}
	f.m = m
	t.Cleanup(m.Close)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, n := f.states("classifier"), c.count(v2); got != "1:AVAILABLE" || n != 0 {
		t.Fatalf("after Start: states %q, %d loads of the folder being copied; want 1 serving and 2 left alone", got, n)
	}
	close(stop)
	<-stopped
	f.polls(2)
	f.waitStates("classifier", "2:AVAILABLE")
}
