package models

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/precision"
)

func TestDefaultPolicyServesTheNewestOnly(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"1", "2", "3"} {
		writeVersion(t, root, "classifier/"+v, "classifier", tenLabels...)
	}
	f := mustStart(t, root, "")
	if got := f.states("classifier"); got != "3:AVAILABLE" {
		t.Fatalf("got %q, want only version 3 (latest 1)", got)
	}
}

func TestPolicies(t *testing.T) {
	tests := []struct {
		name, config, want string
	}{
		{"latest 2", "model classifier\npolicy latest 2\n", "4:AVAILABLE 3:AVAILABLE"},
		{"all", "model classifier\npolicy all\n", "4:AVAILABLE 3:AVAILABLE 2:AVAILABLE 1:AVAILABLE"},
		{"specific", "model classifier\npolicy specific 1 3\n", "3:AVAILABLE 1:AVAILABLE"},
		{"label keeps its version", "model classifier\nlabel stable 2\n", "4:AVAILABLE 2:AVAILABLE"},
		{"other model's section", "model other\npolicy all\n", "4:AVAILABLE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for _, v := range []string{"1", "2", "3", "4"} {
				writeVersion(t, root, "classifier/"+v, "classifier", tenLabels...)
			}
			f := mustStart(t, root, tc.config)
			if got := f.states("classifier"); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPolicyThatPicksNothingLeavesServingAlone: a policy that names no loadable
// version (a typo, a version not copied yet, one that fails) must not take the model
// down; the versions serving stay until one the policy wants is AVAILABLE.
func TestPolicyThatPicksNothingLeavesServingAlone(t *testing.T) {
	root := t.TempDir()
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	writeVersion(t, root, "classifier/2", "classifier", tenLabels...)
	f := mustStart(t, root, "model classifier\n  policy latest 1\n")
	reload := func(config string) {
		t.Helper()
		os.WriteFile(f.m.opts.ConfigPath, []byte(config), 0o644)
		if err := f.m.Reload(context.Background(), true); err != nil {
			t.Fatal(err)
		}
	}
	reload("model classifier\n  policy specific 9\n") // no folder 9
	if got := f.states("classifier"); got != "2:AVAILABLE" {
		t.Fatalf("policy specific 9 without a folder 9: got %q, want 2 still serving", got)
	}
	writeVersion(t, root, "classifier/9", "garbage") // 9 arrives broken
	f.poll()
	if got := f.states("classifier"); got != "9:FAILED 2:AVAILABLE" {
		t.Fatalf("policy specific 9 with 9 broken: got %q, want 2 still serving", got)
	}
	if _, err := f.m.Repository().Get(Spec{Name: "classifier"}, RoleClassifier); err != nil {
		t.Fatalf("the model went out of service: %v", err)
	}
	time.Sleep(10 * time.Millisecond) // a new modification time
	writeVersion(t, root, "classifier/9", "classifier", tenLabels...)
	f.poll()
	f.waitStates("classifier", "9:AVAILABLE")
	// An explicit removal still empties the model.
	os.RemoveAll(filepath.Join(root, "classifier"))
	f.poll()
	f.waitStates("classifier", "")
}

// TestNewVersionTakesOverAndTheOldOneDrains holds a call on version 1 while version 2
// arrives: version 0 flips to 2 only once 2 is warm, 1 leaves routing at once, and its
// engine closes only when the held call is done.
func TestNewVersionTakesOverAndTheOldOneDrains(t *testing.T) {
	root := t.TempDir()
	v1 := writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	f := mustStart(t, root, "")
	repo := f.m.Repository()
	held, release, err := repo.Acquire(Spec{}, RoleClassifier)
	if err != nil || held.Version != 1 {
		t.Fatalf("got %v, %v, want version 1", held, err)
	}
	defer release() // a failing test must not leave Close waiting on the held call

	v2 := writeVersion(t, root, "classifier/2", "classifier", tenLabels...)
	if _, err := f.m.scan(); err != nil {
		t.Fatal(err)
	}
	f.idle()
	if got := f.states("classifier"); got != "1:AVAILABLE" {
		t.Fatalf("after one look at version 2: got %q, want it not loaded yet (unchanged over one poll)", got)
	}
	f.poll()
	f.waitStates("classifier", "2:AVAILABLE 1:UNLOADING")
	if m, _ := repo.Get(Spec{}, RoleClassifier); m.Version != 2 {
		t.Fatalf("version 0 is %d, want 2", m.Version)
	}
	if _, err := repo.Get(Spec{Name: "classifier", Version: 1}, RoleClassifier); !errors.Is(err, ErrNotFound) {
		t.Fatalf("version 1 while unloading: got %v, want NotFound", err)
	}
	if f.loader.engine(t, v1).isClosed() {
		t.Fatal("version 1 closed while a call still holds it")
	}
	if _, err := held.Classify(context.Background(), make([]uint8, 28*28), 1); err != nil {
		t.Fatalf("the held call on the draining version failed: %v", err)
	}
	if e := f.loader.engine(t, v2); e.runs < len(WarmupSizes(4)) {
		t.Fatalf("version 2 ran %d times before taking traffic, want at least %d warm-up runs", e.runs, len(WarmupSizes(4)))
	}
	release()
	f.waitStates("classifier", "2:AVAILABLE")
	if !f.loader.engine(t, v1).isClosed() {
		t.Fatal("version 1 is gone but its engine was never closed")
	}
}

func TestFailedVersionsLeaveServingAlone(t *testing.T) {
	tests := []struct {
		name, content string
		labels        []string
		wantErr       string
	}{
		{"corrupt saved_model.pb", "garbage", tenLabels, "corrupt protobuf"},
		{"unknown role", "unknown", tenLabels, "matches no role"},
		{"labels disagree with the output", "classifier", []string{"a", "b"}, "2 labels but `probabilities` has 10 classes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
			f := mustStart(t, root, "")
			writeVersion(t, root, "classifier/2", tc.content, tc.labels...)
			f.poll()
			if got := f.states("classifier"); got != "2:FAILED 1:AVAILABLE" {
				t.Fatalf("got %q, want 2 FAILED and 1 still serving", got)
			}
			st, _ := f.m.StatusOf("classifier")
			if st.Versions[0].Err == nil || !strings.Contains(st.Versions[0].Err.Error(), tc.wantErr) {
				t.Fatalf("got error %v, want it to say %q", st.Versions[0].Err, tc.wantErr)
			}
			if m, err := f.m.Repository().Get(Spec{}, RoleClassifier); err != nil || m.Version != 1 {
				t.Fatalf("got %v %v, want version 1 serving", m, err)
			}
			if n := strings.Count(f.logText(), "model version failed"); n != 1 {
				t.Fatalf("got %d failure log lines, want 1:\n%s", n, f.logText())
			}
			var metrics strings.Builder
			f.m.WriteMetrics(&metrics)
			if !strings.Contains(metrics.String(), `atelier_model_load_failures_total{model="classifier"} 1`) {
				t.Fatalf("metrics do not count the failure:\n%s", metrics.String())
			}
			// Unchanged, it is not retried; fixed, it is.
			f.poll()
			if n := strings.Count(f.logText(), "model version failed"); n != 1 {
				t.Fatalf("an unchanged failed folder was retried (%d failure lines)", n)
			}
			time.Sleep(10 * time.Millisecond) // a new modification time
			writeVersion(t, root, "classifier/2", "classifier", tenLabels...)
			f.poll()
			f.waitStates("classifier", "2:AVAILABLE")
		})
	}
}

func TestHalfCopiedFolderIsNotLoaded(t *testing.T) {
	root := t.TempDir()
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	f := mustStart(t, root, "")
	// saved_model.pb is there, variables/ not yet.
	os.MkdirAll(filepath.Join(root, "classifier", "2"), 0o755)
	os.WriteFile(filepath.Join(root, "classifier", "2", "saved_model.pb"), []byte("classifier"), 0o644)
	f.poll()
	if got := f.states("classifier"); got != "1:AVAILABLE" {
		t.Fatalf("got %q, want the half-copied version ignored", got)
	}
	// A file still growing between two polls is not loaded either.
	writeVersion(t, root, "classifier/3", "classifier", tenLabels...)
	f.m.scan()
	os.WriteFile(filepath.Join(root, "classifier", "3", "variables", "variables.data-00000-of-00001"), []byte("more"), 0o644)
	f.m.scan()
	f.idle()
	if got := f.states("classifier"); got != "1:AVAILABLE" {
		t.Fatalf("got %q, want version 3 left alone while it changes", got)
	}
	f.poll()
	f.waitStates("classifier", "3:AVAILABLE")
}

func TestRenamedIntoPlaceIsLoadedOnReload(t *testing.T) {
	root := t.TempDir()
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	f := mustStart(t, root, "")
	writeVersion(t, root, "classifier/.staging-2", "classifier", tenLabels...)
	if err := os.Rename(filepath.Join(root, "classifier", ".staging-2"), filepath.Join(root, "classifier", "2")); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Reload(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	f.waitStates("classifier", "2:AVAILABLE")
}

func TestRemovedLastVersionUnloadsAndNamesWhatIsLoaded(t *testing.T) {
	root := t.TempDir()
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	writeVersion(t, root, "gan/1", "generator")
	f := mustStart(t, root, "")
	os.RemoveAll(filepath.Join(root, "classifier"))
	f.poll()
	f.waitStates("classifier", "")
	_, _, err := f.m.Repository().Acquire(Spec{Name: "classifier"}, RoleClassifier)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "gan:1") {
		t.Fatalf("got %v, want NotFound naming gan:1", err)
	}
	if _, err := f.m.StatusOf("classifier"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("status of a removed model: got %v, want NotFound", err)
	}
}

func TestLabels(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"1", "2", "3"} {
		writeVersion(t, root, "classifier/"+v, "classifier", tenLabels...)
	}
	f := mustStart(t, root, "model classifier\n  label stable 2\n")
	repo := f.m.Repository()
	get := func(label string) int64 {
		m, err := repo.Get(Spec{Name: "classifier", Label: label}, RoleClassifier)
		if err != nil {
			t.Fatal(err)
		}
		return m.Version
	}
	if got := get("stable"); got != 2 {
		t.Fatalf("stable: got %d, want 2", got)
	}
	if _, err := f.m.SetLabels("classifier", map[string]int64{"canary": 1}); !errors.Is(err, ErrLabelTarget) {
		t.Fatalf("a label on a version not loaded: got %v, want ErrLabelTarget", err)
	}
	if _, err := f.m.SetLabels("classifier", map[string]int64{"Bad Label": 3}); !errors.Is(err, ErrBadLabel) {
		t.Fatalf("a malformed label: got %v, want ErrBadLabel", err)
	}
	got, err := f.m.SetLabels("classifier", map[string]int64{"canary": 3})
	if err != nil || got["canary"] != 3 || got["stable"] != 2 {
		t.Fatalf("got %v %v, want canary=3 stable=2", got, err)
	}
	if err := f.m.UnloadModel("classifier", 2); err == nil || !strings.Contains(err.Error(), "stable") {
		t.Fatalf("unloading a labelled version: got %v, want a refusal naming the label", err)
	}
	// A config whose label names a version that is not loaded is refused; the old stays.
	os.WriteFile(f.m.opts.ConfigPath, []byte("model classifier\n  label stable 1\n"), 0o644)
	if err := f.m.Reload(context.Background(), true); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "version 1") {
		t.Fatalf("got %v, want the config refused naming version 1", err)
	}
	if got := get("stable"); got != 2 {
		t.Fatalf("after a refused config, stable is %d, want 2", got)
	}
	// Moving the label lets version 2 go (latest 1 wants only 3).
	if _, err := f.m.SetLabels("classifier", map[string]int64{"stable": 3}); err != nil {
		t.Fatal(err)
	}
	f.waitStates("classifier", "3:AVAILABLE")
}

func TestLoadAndUnloadByHand(t *testing.T) {
	root := t.TempDir()
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	writeVersion(t, root, "classifier/2", "classifier", tenLabels...)
	f := mustStart(t, root, "")
	ctx := context.Background()
	st, err := f.m.LoadModel(ctx, "classifier", 1)
	if err != nil || st.State != StateAvailable || !st.Pinned {
		t.Fatalf("got %+v %v, want version 1 pinned and AVAILABLE", st, err)
	}
	f.poll()
	if got := f.states("classifier"); got != "2:AVAILABLE 1:AVAILABLE" {
		t.Fatalf("got %q, want the pinned version kept", got)
	}
	if _, err := f.m.LoadModel(ctx, "classifier", 9); !errors.Is(err, ErrNotFound) {
		t.Fatalf("loading a version with no folder: got %v, want NotFound", err)
	}
	if err := f.m.UnloadModel("classifier", 2); err != nil {
		t.Fatal(err)
	}
	f.waitStates("classifier", "1:AVAILABLE")
	f.poll()
	if got := f.states("classifier"); got != "1:AVAILABLE" {
		t.Fatalf("got %q, want the evicted version to stay out", got)
	}
	if err := f.m.UnloadModel("classifier", 2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unloading a version not loaded: got %v, want NotFound", err)
	}
}

func TestStartFailsWithoutAnyModel(t *testing.T) {
	if _, err := startManager(t, t.TempDir(), ""); !errors.Is(err, ErrNoModels) {
		t.Fatalf("an empty repository: got %v, want ErrNoModels", err)
	}
	root := t.TempDir()
	writeVersion(t, root, "classifier/1", "garbage")
	if _, err := startManager(t, root, ""); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("only a corrupt model: got %v, want an error naming its failure", err)
	}
	root = t.TempDir()
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	if _, err := startManager(t, root, "model classifier\nlabel stable 5\n"); !errors.Is(err, ErrConfig) {
		t.Fatalf("a config labelling a missing version: got %v, want ErrConfig", err)
	}
}

// TestOnDiskListsUnloadedVersionsToo: the repository RPCs of the Open Inference
// Protocol list and load versions the lifecycle does not hold.
func TestOnDiskListsUnloadedVersionsToo(t *testing.T) {
	root := t.TempDir()
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	writeVersion(t, root, "classifier/3", "classifier", tenLabels...)
	os.MkdirAll(filepath.Join(root, "classifier", "7"), 0o755) // no saved_model.pb: not a version
	writeVersion(t, root, "generator/2", "generator")
	f := mustStart(t, root, "")
	if err := f.m.UnloadModel("generator", 2); err != nil {
		t.Fatal(err)
	}
	f.waitStates("generator", "")
	got := f.m.OnDisk()
	want := map[string]string{"classifier": "[3 1]", "generator": "[2]"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for name, w := range want {
		if g := fmt.Sprint(got[name]); g != w {
			t.Errorf("%s: got versions %s, want %s", name, g, w)
		}
	}
}

// TestCloseDoesNotLoadTheQueue: Close (at shutdown) stops after the load in progress
// instead of loading, warming and publishing every queued version first, and it cuts
// a warm-up short.
func TestCloseDoesNotLoadTheQueue(t *testing.T) {
	root := t.TempDir()
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	fl := &fakeLoader{}
	gate, started := make(chan struct{}), make(chan string, 10)
	var loads atomic.Int32
	m, err := NewManager(ManagerOptions{Root: root, Settle: time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Load: func(dir string, s precision.Setting) (Loaded, error) {
			if !strings.HasSuffix(dir, filepath.Join("classifier", "1")) {
				loads.Add(1)
				started <- dir
				<-gate
			}
			return fl.load(dir, s)
		},
		Warm: func(ctx context.Context, m *Model) error {
			if m.Name == "warm" {
				<-ctx.Done() // a warm-up that only Close ends
				return ctx.Err()
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"warm", "b", "c", "d"} {
		writeVersion(t, root, name+"/1", "classifier", tenLabels...)
	}
	for range 2 {
		if _, err := m.scan(); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-started: // the first of the four queued loads is under way
	case <-time.After(10 * time.Second):
		// Fail here rather than wait out the package's timeout on a load that never comes.
		t.Fatal("none of the four queued versions began loading within 10 s")
	}
	closed := make(chan struct{})
	go func() {
		m.Close()
		close(closed)
	}()
	for !m.isClosed() {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close still waits after 5s")
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("%d versions loaded after Close began, want only the one already loading", n)
	}
}

// TestPrecisionLineReloadsServingVersions changes a model's precision line: at the
// reload its serving version is loaded again in the new precision and swapped in,
// while a call holding the old one finishes on it before it closes; the model is
// never out of routing. A reload whose new load fails leaves the loaded one serving.
func TestPrecisionLineReloadsServingVersions(t *testing.T) {
	root := t.TempDir()
	dir := writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	f := mustStart(t, root, "model classifier\n  precision fp32\n")
	reload := func(config string) {
		t.Helper()
		os.WriteFile(f.m.opts.ConfigPath, []byte(config), 0o644)
		if err := f.m.Reload(context.Background(), true); err != nil {
			t.Fatal(err)
		}
	}
	get := func() *Model {
		t.Helper()
		m, err := f.m.Repository().Get(Spec{Name: "classifier"}, RoleClassifier)
		if err != nil {
			t.Fatalf("the model went out of service: %v", err)
		}
		return m
	}
	old, release, err := f.m.Repository().Acquire(Spec{Name: "classifier"}, RoleClassifier)
	if err != nil || old.Precision != precision.FP32 {
		t.Fatalf("got %v %v, want version 1 in fp32", old, err)
	}
	t.Cleanup(release) // before Close, which waits for held versions, if the test fails early
	oldEngine := f.loader.engine(t, dir)

	reload("model classifier\n  precision bf16\n")
	now := get()
	if now == old || now.Version != 1 || now.Precision != precision.BF16 {
		t.Fatalf("after the reload: version %d in %s (the same model: %v), want version 1 loaded again in bf16", now.Version, now.Precision, now == old)
	}
	if got := f.states("classifier"); got != "1:AVAILABLE" {
		t.Fatalf("states %q, want 1:AVAILABLE", got)
	}
	if oldEngine.isClosed() {
		t.Fatal("the old engine was closed under a call still holding it")
	}
	if _, err := old.Classify(context.Background(), make([]uint8, 28*28), 1); err != nil {
		t.Fatalf("the call holding the old version failed: %v", err)
	}
	release()
	deadline := time.Now().Add(5 * time.Second)
	for !oldEngine.isClosed() {
		if time.Now().After(deadline) {
			t.Fatal("the old engine was not closed after its last call")
		}
		time.Sleep(time.Millisecond)
	}
	if !strings.Contains(f.logText(), "model version reloaded") {
		t.Errorf("no log line for the reload:\n%s", f.logText())
	}

	// The same line again loads nothing.
	reload("model classifier\n  precision bf16\n")
	if get() != now {
		t.Fatal("an unchanged precision line loaded the version again")
	}

	// A new load that fails (the folder broken since) leaves the loaded one serving.
	time.Sleep(10 * time.Millisecond) // a new modification time
	os.WriteFile(filepath.Join(dir, "saved_model.pb"), []byte("garbage"), 0o644)
	reload("model classifier\n  precision fp32\n")
	if get() != now || f.states("classifier") != "1:AVAILABLE" {
		t.Fatalf("a failed reload changed what serves: states %q", f.states("classifier"))
	}
	if !strings.Contains(f.logText(), "model version reload failed; the loaded one serves on") {
		t.Errorf("no log line for the failed reload:\n%s", f.logText())
	}
}
