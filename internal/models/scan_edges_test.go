package models

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/precision"
	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// The tests in this file break the model folder the way an operator or a careless
// deploy script would, with real files, and check that the server neither crashes nor
// hangs, loads nothing twice, does not log at every poll, and keeps serving what it
// has unless a folder is really gone.

// skippedLine is what the manager logs, once, about a folder it cannot take.
const skippedLine = `msg="model folder skipped"`

// loadCounter counts a fake loader's loads per folder.
type loadCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *loadCounter) count(dir string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[dir]
}

func (c *loadCounter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.n {
		n += k
	}
	return n
}

// startCounted is startManager with a loader that counts its loads; Start's error is
// returned, not fatal.
func startCounted(t *testing.T, root, config string) (*managerFixture, *loadCounter, error) {
	t.Helper()
	f := &managerFixture{t: t, root: root, loader: &fakeLoader{}, log: &testenv.Buffer{}}
	c := &loadCounter{n: map[string]int{}}
	opts := ManagerOptions{Root: root, Settle: time.Millisecond, Log: slog.New(slog.NewTextHandler(f.log, nil)),
		Warm: func(ctx context.Context, m *Model) error { return WarmUp(ctx, m, 4) },
		Load: func(dir string, s precision.Setting) (Loaded, error) {
			c.mu.Lock()
			c.n[dir]++
			c.mu.Unlock()
			return f.loader.load(dir, s)
		}}
	if config != "" {
		opts.ConfigPath = filepath.Join(t.TempDir(), "models.conf")
		if err := os.WriteFile(opts.ConfigPath, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := NewManager(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.m = m
	t.Cleanup(m.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return f, c, m.Start(ctx)
}

func mustStartCounted(t *testing.T, root, config string) (*managerFixture, *loadCounter) {
	t.Helper()
	f, c, err := startCounted(t, root, config)
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

// polls runs n polls' scans and waits for the loads they start.
func (f *managerFixture) polls(n int) {
	f.t.Helper()
	for range n {
		if _, err := f.m.scan(); err != nil {
			f.t.Fatal(err)
		}
	}
	f.idle()
}

// skips returns the "model folder skipped" lines that mention s.
func (f *managerFixture) skips(s string) int {
	n := 0
	for _, l := range strings.Split(f.logText(), "\n") {
		if strings.Contains(l, skippedLine) && strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// TestVersionFolderNames: only a name of ASCII digits is a version. A
// number the server cannot use (0, or beyond int64) is logged once, not at every poll,
// rather than ignored in silence; a sign, a space, a decimal point or another script's
// digits make a name that is not a version at all (a staging or notes folder).
func TestVersionFolderNames(t *testing.T) {
	tests := []struct {
		name   string // the odd folder, next to a good version 1
		onDisk string // what OnDisk lists for the model
		warn   bool   // logged once as skipped
	}{
		{"0", "[1]", true},
		{"00", "[1]", true},
		{"-1", "[1]", false},
		{"-0", "[1]", false},
		{"+7", "[1]", false}, // strconv.ParseInt takes the sign: it was version 7
		{"007", "[7 1]", false},
		{"99999999999999999999", "[1]", true}, // beyond int64
		{"9223372036854775807", "[9223372036854775807 1]", false},
		{"1.5", "[1]", false},
		{" 1", "[1]", false},
		{"1 ", "[1]", false},
		{"١", "[1]", false}, // ARABIC-INDIC DIGIT ONE
		{"0x10", "[1]", false},
		{"1e3", "[1]", false},
		{"1_000", "[1]", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
			writeVersion(t, root, "classifier/"+tc.name, "classifier", tenLabels...)
			f, _ := mustStartCounted(t, root, "")
			f.polls(3)
			if got := fmt.Sprint(f.m.OnDisk()["classifier"]); got != tc.onDisk {
				t.Errorf("folder %q: versions on disk %s, want %s", tc.name, got, tc.onDisk)
			}
			want := 0
			if tc.warn {
				want = 1
			}
			if got := f.skips(filepath.Join(root, "classifier", tc.name)); got != want {
				t.Errorf("folder %q: %d skipped lines over four scans, want %d:\n%s", tc.name, got, want, f.logText())
			}
		})
	}
}

// TestDuplicateVersionNumbers: "7" and "007" are both version 7. Neither
// may silently win: a loaded version keeps the folder it was loaded from (a precision
// reload reads that folder, not the other spelling), an unloaded one waits until only
// one spelling is left, and the clash is logged once.
func TestDuplicateVersionNumbers(t *testing.T) {
	t.Run("a second spelling next to a loaded version", func(t *testing.T) {
		root := t.TempDir()
		writeVersion(t, root, "classifier/007", "classifier", tenLabels...)
		f, loads := mustStartCounted(t, root, "model classifier\n  precision fp32\n")
		writeVersion(t, root, "classifier/7", "garbage") // a different model, same number
		f.polls(3)
		if got := f.states("classifier"); got != "7:AVAILABLE" {
			t.Fatalf("states %q, want 7 serving on", got)
		}
		os.WriteFile(f.m.opts.ConfigPath, []byte("model classifier\n  precision bf16\n"), 0o644)
		if err := f.m.Reload(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		m, err := f.m.Repository().Get(Spec{Name: "classifier"}, RoleClassifier)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(m.Dir) != "007" || m.Precision != precision.BF16 {
			t.Errorf("after a precision reload version 7 is %s in %s, want 007 (the folder it was loaded from) in bf16\n%s", m.Dir, m.Precision, f.logText())
		}
		if n := loads.count(filepath.Join(root, "classifier", "7")); n != 0 {
			t.Errorf("folder 7 was loaded %d times in place of 007", n)
		}
		if n := f.skips("version 7"); n != 1 {
			t.Errorf("%d skipped lines naming version 7 over five scans, want 1:\n%s", n, f.logText())
		}
	})
	t.Run("two spellings at start-up", func(t *testing.T) {
		root := t.TempDir()
		writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
		writeVersion(t, root, "classifier/7", "classifier", tenLabels...)
		writeVersion(t, root, "classifier/07", "classifier", tenLabels...)
		f, _ := mustStartCounted(t, root, "")
		if got := f.states("classifier"); got != "1:AVAILABLE" {
			t.Fatalf("states %q, want 1 serving and 7 (two folders) not taken", got)
		}
		if n := f.skips("version 7"); n != 1 {
			t.Errorf("%d skipped lines naming version 7, want 1:\n%s", n, f.logText())
		}
		os.RemoveAll(filepath.Join(root, "classifier", "07"))
		f.polls(2)
		f.waitStates("classifier", "7:AVAILABLE")
	})
}

// TestManyVersionFolders: 5,000 empty version folders and 300 broken ones
// next to a good one. The scan looks at each folder once per poll (no load, no log
// line), a broken folder is loaded and logged once, and no poll loads or logs again.
func TestManyVersionFolders(t *testing.T) {
	root := t.TempDir()
	for i := 1; i <= 5000; i++ {
		if err := os.MkdirAll(filepath.Join(root, "classifier", itoa(int64(i))), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeVersion(t, root, "classifier/5001", "classifier", tenLabels...)
	for i := 1; i <= 300; i++ {
		writeVersion(t, root, "broken/"+itoa(int64(i)), "garbage")
	}
	writeVersion(t, root, "broken/301", "classifier", tenLabels...)
	start := time.Now()
	f, loads := mustStartCounted(t, root, "model broken\n  policy all\n")
	t.Logf("start-up: %v, %d loads", time.Since(start), loads.total())
	if got := f.states("classifier"); got != "5001:AVAILABLE" {
		t.Fatalf("classifier: states %q, want 5001 only", got)
	}
	if n := loads.total(); n != 302 {
		t.Fatalf("%d loads at start-up, want 302 (5001, and broken's 301 folders)", n)
	}
	if n := strings.Count(f.logText(), "model version failed"); n != 300 {
		t.Fatalf("%d failure lines at start-up, want 300", n)
	}
	logged := len(f.logText())
	start = time.Now()
	f.polls(5)
	t.Logf("5 scans of 5,302 version folders: %v", time.Since(start))
	if n := loads.total(); n != 302 {
		t.Errorf("%d loads after five more scans, want still 302", n)
	}
	if more := f.logText()[logged:]; more != "" {
		t.Errorf("the scans logged:\n%s", more)
	}
	var metrics strings.Builder
	f.m.WriteMetrics(&metrics)
	for _, want := range []string{`atelier_model_load_failures_total{model="broken"} 300`,
		`atelier_model_versions{model="broken",state="FAILED"} 300`, `atelier_model_versions{model="broken",state="AVAILABLE"} 1`} {
		if !strings.Contains(metrics.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestSymlinksAndFiles: linked model and version folders are followed; a
// link to itself, a link to the model's own folder, a dangling link, a version
// "folder" that is a file and a saved_model.pb that is a folder are not versions (or
// fail once); nothing hangs, recurses or is loaded twice.
func TestSymlinksAndFiles(t *testing.T) {
	root, elsewhere := t.TempDir(), t.TempDir()
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	writeVersion(t, elsewhere, "linked/1", "classifier", tenLabels...)
	writeVersion(t, elsewhere, "v2", "classifier", tenLabels...)
	cl := filepath.Join(root, "classifier")
	links := map[string]string{
		filepath.Join(root, "linked"):   filepath.Join(elsewhere, "linked"), // a model folder
		filepath.Join(root, "loop"):     "loop",                             // itself
		filepath.Join(root, "dangling"): filepath.Join(elsewhere, "nothing"),
		filepath.Join(cl, "2"):          filepath.Join(elsewhere, "v2"), // a version folder
		filepath.Join(cl, "3"):          ".",                            // the model's own folder
		filepath.Join(cl, "4"):          "4",                            // itself
		filepath.Join(cl, "5"):          "nothing",
	}
	for link, target := range links {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(cl, "6"), []byte("a tarball, say"), 0o644)
	dir7 := writeVersion(t, root, "pbdir/7", "classifier", tenLabels...)
	os.Remove(filepath.Join(dir7, "saved_model.pb"))
	os.Mkdir(filepath.Join(dir7, "saved_model.pb"), 0o755)

	f, loads := mustStartCounted(t, root, "model pbdir\n  policy all\n")
	f.polls(3)
	if got := f.states("classifier"); got != "2:AVAILABLE" {
		t.Errorf("classifier: states %q, want the linked version 2", got)
	}
	if got := f.states("linked"); got != "1:AVAILABLE" {
		t.Errorf("linked: states %q, want 1", got)
	}
	if got := fmt.Sprint(f.m.OnDisk()["classifier"]); got != "[2 1]" {
		t.Errorf("classifier: versions on disk %s, want [2 1]", got)
	}
	st, err := f.m.StatusOf("pbdir")
	if err != nil || len(st.Versions) != 1 || st.Versions[0].State != StateFailed || !strings.Contains(fmt.Sprint(st.Versions[0].Err), "is a directory") {
		t.Errorf("pbdir: got %+v %v, want version 7 FAILED saying saved_model.pb is a directory", st, err)
	}
	if n := loads.total(); n != 3 {
		t.Errorf("%d loads, want 3 (classifier 2, the newest; linked 1; pbdir 7 once)", n)
	}
	if n := strings.Count(f.logText(), "model version failed"); n != 1 {
		t.Errorf("%d failure lines, want 1", n)
	}
	// A link to itself cannot be read: say so once, not at every poll.
	for _, p := range []string{filepath.Join(root, "loop"), filepath.Join(cl, "4"), filepath.Join(cl, "6")} {
		if n := f.skips(p); n != 1 {
			t.Errorf("%s: %d skipped lines over four scans, want 1", p, n)
		}
	}
}

// TestFailingFolderIsNotRetriedEveryPoll: a broken version is loaded once,
// FAILED, counted and logged once, and left alone at every later poll until its
// folder changes; docs/RELOAD.md's promises, checked over many polls.
func TestFailingFolderIsNotRetriedEveryPoll(t *testing.T) {
	root := t.TempDir()
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	f, loads := mustStartCounted(t, root, "")
	dir := writeVersion(t, root, "classifier/2", "garbage")
	f.polls(50)
	if n := loads.count(dir); n != 1 {
		t.Fatalf("the broken folder was loaded %d times in 50 polls, want 1", n)
	}
	if got := f.states("classifier"); got != "2:FAILED 1:AVAILABLE" {
		t.Fatalf("states %q, want 2 FAILED and 1 serving", got)
	}
	if n := strings.Count(f.logText(), `level=ERROR msg="model version failed" model=classifier version=2`); n != 1 {
		t.Fatalf("%d failure lines, want 1:\n%s", n, f.logText())
	}
	var metrics strings.Builder
	f.m.WriteMetrics(&metrics)
	for _, want := range []string{`atelier_model_load_failures_total{model="classifier"} 1`,
		`atelier_model_versions{model="classifier",state="FAILED"} 1`, `atelier_model_versions{model="classifier",state="AVAILABLE"} 1`} {
		if !strings.Contains(metrics.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, metrics.String())
		}
	}
	// Removed and put back unchanged, it is a new folder: tried once more.
	os.Rename(dir, filepath.Join(root, "classifier", ".away"))
	f.polls(1)
	if got := f.states("classifier"); got != "1:AVAILABLE" {
		t.Fatalf("states %q after the broken folder went, want 1 only", got)
	}
	os.Rename(filepath.Join(root, "classifier", ".away"), dir)
	f.polls(10)
	if n := loads.count(dir); n != 2 {
		t.Fatalf("the broken folder, put back, was loaded %d times in all, want 2", n)
	}
}

// TestModelFolderRemovedAndRestored: rm -rf of a serving model takes it out
// of routing (docs/RELOAD.md); while rm is half done the model serves on; put back,
// it serves again after two polls.
func TestModelFolderRemovedAndRestored(t *testing.T) {
	root, backup := t.TempDir(), t.TempDir()
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	writeVersion(t, root, "gan/1", "generator")
	writeVersion(t, backup, "classifier/1", "classifier", tenLabels...)
	f := mustStart(t, root, "")
	// rm -rf removes files before their folders: saved_model.pb is gone first.
	os.Remove(filepath.Join(root, "classifier", "1", "saved_model.pb"))
	f.polls(2)
	if got := f.states("classifier"); got != "1:AVAILABLE" {
		t.Fatalf("half removed: states %q, want 1 serving on", got)
	}
	os.RemoveAll(filepath.Join(root, "classifier"))
	f.polls(1)
	f.waitStates("classifier", "")
	if _, _, err := f.m.Repository().Acquire(Spec{Name: "classifier"}, RoleClassifier); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed: got %v, want NotFound", err)
	}
	if err := os.Rename(filepath.Join(backup, "classifier"), filepath.Join(root, "classifier")); err != nil {
		t.Fatal(err)
	}
	f.polls(1)
	if got := f.states("classifier"); got != "" {
		t.Fatalf("one poll after it came back: states %q, want nothing yet", got)
	}
	f.polls(1)
	f.waitStates("classifier", "1:AVAILABLE")
	if got := f.states("gan"); got != "1:AVAILABLE" {
		t.Fatalf("gan: states %q, want it untouched", got)
	}
}

// TestModelDirMissing: a missing --model-dir stops the start with an error
// naming it. Removed while serving, nothing is unloaded, and the poll says so once,
// not every interval, and once more when the folder is back.
func TestModelDirMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	if _, _, err := startCounted(t, missing, ""); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("start on a missing folder: got %v, want an error naming it", err)
	}

	parent := t.TempDir()
	root := filepath.Join(parent, "models")
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	f, _ := mustStartCounted(t, root, "")
	os.Rename(root, filepath.Join(parent, "away"))
	for range 20 {
		f.m.poll()
	}
	// A rescan asked for (ReloadRepository) fails as a precondition, not an internal error.
	if err := f.m.Reload(context.Background(), true); !errors.Is(err, ErrRepository) || !errors.Is(err, errkind.FailedPrecondition) || !strings.Contains(err.Error(), root) {
		t.Fatalf("a rescan with the folder gone: got %v, want ErrRepository (FAILED_PRECONDITION) naming %s", err, root)
	}
	f.idle()
	if got := f.states("classifier"); got != "1:AVAILABLE" {
		t.Fatalf("states %q with the folder gone, want 1 serving on", got)
	}
	if n := strings.Count(f.logText(), `msg="model repository scan"`); n != 1 {
		t.Fatalf("%d scan error lines in 20 polls, want 1:\n%s", n, f.logText())
	}
	os.Rename(filepath.Join(parent, "away"), root)
	for range 3 {
		f.m.poll()
	}
	if n := strings.Count(f.logText(), `msg="model repository scan works again"`); n != 1 {
		t.Fatalf("%d recovery lines, want 1:\n%s", n, f.logText())
	}
	os.Rename(root, filepath.Join(parent, "away"))
	f.m.poll()
	if n := strings.Count(f.logText(), `msg="model repository scan"`); n != 2 {
		t.Fatalf("%d scan error lines, want 2 (the folder went twice):\n%s", n, f.logText())
	}
}

// sampleLine is one sample of Prometheus' text format: a metric name, label values
// with only \\, \" and \n escaped, and a value.
var sampleLine = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*\{[a-z_]+="(?:[^"\\\n]|\\[\\"n])*"(?:,[a-z_]+="(?:[^"\\\n]|\\[\\"n])*")*\} \S+$`)

// TestModelNames: a model folder is named by any bytes but "/". Names that
// matter to logs, metrics and labels (a line feed, a quote, a backslash, a tab, 255
// bytes) serve and keep the log one record a line and the metrics parseable; a name
// that is not UTF-8, which neither Prometheus' text format nor a protobuf string can
// carry (one such folder broke GetModelStatus and /metrics for every model), is
// skipped and logged once.
func TestModelNames(t *testing.T) {
	root := t.TempDir()
	good := []string{"line\nfeed", `quo"te`, `back\slash`, "tab\tname", strings.Repeat("n", 255), "modèle", "a b"}
	bad := "mod\xe8le" // Latin-1
	for _, n := range append(good, bad, "classifier") {
		writeVersion(t, root, n+"/1", "classifier", tenLabels...)
	}
	f, _ := mustStartCounted(t, root, "")
	f.polls(3)
	for _, n := range good {
		if got := f.states(n); got != "1:AVAILABLE" {
			t.Errorf("model %q: states %q, want 1:AVAILABLE", n, got)
		}
	}
	if got := f.states(bad); got != "" {
		t.Errorf("model %q (not UTF-8): states %q, want it skipped", bad, got)
	}
	if n := f.skips("not valid UTF-8"); n != 1 {
		t.Errorf("%d skipped lines for the non-UTF-8 name over four scans, want 1:\n%s", n, f.logText())
	}
	for _, st := range f.m.Status() {
		if _, err := proto.Marshal(&pb.ModelStatus{Name: st.Name}); err != nil {
			t.Errorf("model %q: GetModelStatus cannot carry the name: %v", st.Name, err)
		}
	}
	var metrics strings.Builder
	f.m.WriteMetrics(&metrics)
	if !utf8.ValidString(metrics.String()) {
		t.Error("the metrics are not UTF-8: Prometheus refuses the whole scrape")
	}
	for _, l := range strings.Split(strings.TrimSuffix(metrics.String(), "\n"), "\n") {
		if !strings.HasPrefix(l, "#") && !sampleLine.MatchString(l) {
			t.Errorf("not a sample line: %q", l)
		}
	}
	// Unload one by hand so that the log has lines naming it, then check each record
	// is one line.
	if err := f.m.UnloadModel("line\nfeed", 1); err != nil {
		t.Fatal(err)
	}
	f.waitStates("line\nfeed", "")
	for _, l := range strings.Split(strings.TrimSuffix(f.logText(), "\n"), "\n") {
		if !strings.HasPrefix(l, "time=") {
			t.Errorf("a log record spans lines: %q", l)
		}
	}
}

// asUnprivileged runs the calling test again in a child process as the user nobody
// and reports its result there; it returns true where the test body should run. Root
// reads and lists any folder whatever its mode, so only an unprivileged process sees
// what a chmod does to atelierd, which runs as 65532 (deploy/Containerfile).
func asUnprivileged(t *testing.T) bool {
	t.Helper()
	const env = "ATELIER_TEST_UNPRIVILEGED"
	if os.Getenv(env) == t.Name() || os.Geteuid() != 0 {
		return true
	}
	dir, err := os.MkdirTemp("", "atelier-unprivileged-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777) // the copied test binary, and the child's TMPDIR
	bin := filepath.Join(dir, "models.test")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(dst, src)
	src.Close()
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), env+"="+t.Name(), "TMPDIR="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		// As root, permission bits do not stop reads: the test needs the child.
		testenv.Missing(t, "a child test process as uid 65534", fmt.Sprintf("it did not start: %v", err))
		return false
	}
	t.Logf("as uid 65534:\n%s", out)
	if err != nil {
		t.Fatalf("as uid 65534: %v", err)
	}
	return false
}

// TestUnreadableFolders (as an unprivileged user): a folder the server
// cannot read is not a folder that was removed. A chmod 000 on a serving model's
// folder or version folder (a deploy script's `chmod -R go-rwx`, or a copy made as
// root with umask 077) leaves what is loaded serving, says so once, and a new version
// folder it cannot read is named in the log instead of being ignored in silence.
func TestUnreadableFolders(t *testing.T) {
	if !asUnprivileged(t) {
		return
	}
	root := t.TempDir()
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	writeVersion(t, root, "classifier/2", "classifier", tenLabels...)
	writeVersion(t, root, "gan/1", "generator")
	f, loads := mustStartCounted(t, root, "")
	var locked []string
	chmod := func(p string, mode os.FileMode) {
		t.Helper()
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if mode == 0 {
			locked = append(locked, p)
		}
	}
	t.Cleanup(func() { // before TempDir's RemoveAll, which cannot enter a 000 folder
		for _, p := range locked {
			os.Chmod(p, 0o755)
		}
	})
	gan, v2 := filepath.Join(root, "gan"), filepath.Join(root, "classifier", "2")
	chmod(gan, 0)
	chmod(v2, 0)
	// An ext4 volume's lost+found (0700 root) is never a model: no warning about it.
	lf := filepath.Join(root, "lost+found")
	os.Mkdir(lf, 0o755)
	chmod(lf, 0)
	f.polls(5)
	if n := f.skips(lf); n != 0 {
		t.Errorf("%d skipped lines about lost+found, want none", n)
	}
	if got := f.states("gan"); got != "1:AVAILABLE" {
		t.Errorf("gan, its folder unreadable: states %q, want 1 serving on", got)
	}
	if got := f.states("classifier"); got != "2:AVAILABLE" {
		t.Errorf("classifier, version 2's folder unreadable: states %q, want 2 serving on (not a roll back to 1)", got)
	}
	v3 := writeVersion(t, root, "classifier/3", "classifier", tenLabels...)
	chmod(v3, 0)
	f.polls(5)
	if got := f.states("classifier"); got != "2:AVAILABLE" {
		t.Errorf("classifier, version 3 unreadable: states %q, want 2 serving on", got)
	}
	for _, p := range []string{gan, v2, v3} {
		if n := f.skips(p); n != 1 {
			t.Errorf("%s: %d skipped lines over ten scans, want 1", p, n)
		}
	}
	chmod(gan, 0o755)
	chmod(v2, 0o755)
	chmod(v3, 0o755)
	f.polls(2)
	f.waitStates("classifier", "3:AVAILABLE")
	if got := f.states("gan"); got != "1:AVAILABLE" {
		t.Errorf("gan, readable again: states %q, want 1", got)
	}
	if n := loads.count(filepath.Join(gan, "1")); n != 1 {
		t.Errorf("gan 1 was loaded %d times, want once (never unloaded)", n)
	}
	// An unreadable --model-dir is a scan error: nothing changes.
	chmod(root, 0)
	if _, err := f.m.scan(); err == nil {
		t.Error("a scan of an unreadable --model-dir did not fail")
	}
	chmod(root, 0o755)
	if got := f.states("gan"); got != "1:AVAILABLE" {
		t.Errorf("gan after an unreadable --model-dir: states %q", got)
	}
}

// TestReloadWithTheFolderGone: a SIGHUP or ReloadRepository while
// --model-dir is missing reads the config and uses it, so its error is not a refusal
// of the config (not ErrConfig: atelierd's SIGHUP log line tells the two apart), and
// what is loaded serves on.
func TestReloadWithTheFolderGone(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "models")
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	f, _ := mustStartCounted(t, root, "model classifier\n  policy latest 1\n")
	os.Rename(root, filepath.Join(parent, "away"))
	os.WriteFile(f.m.opts.ConfigPath, []byte("model classifier\n  policy all\n"), 0o644)
	err := f.m.Reload(context.Background(), true)
	if err == nil || errors.Is(err, ErrConfig) {
		t.Fatalf("reload with the folder gone: got %v, want a scan error that is not ErrConfig", err)
	}
	st, _ := f.m.StatusOf("classifier")
	if st.Policy.String() != "all" {
		t.Errorf("policy %s, want the re-read config's (all) in use", st.Policy)
	}
	if got := f.states("classifier"); got != "1:AVAILABLE" {
		t.Errorf("states %q, want 1 serving on", got)
	}
}

// TestSpecialFiles: a saved_model.pb, variables file, labels.txt or
// warm-up image that is a named pipe would block the one loader goroutine in open(2)
// for ever: no other version would load again and Close (shutdown) would wait for it.
// Such a version is skipped (or fails its warm-up) instead, and the next one loads.
func TestSpecialFiles(t *testing.T) {
	root := t.TempDir()
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	f, loads := mustStartCounted(t, root, "model classifier\n  policy all\n")
	var fifos []string
	mkfifo := func(p string) {
		t.Helper()
		os.Remove(p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
		fifos = append(fifos, p)
	}
	t.Cleanup(func() { // unblock a reader stuck in open(2), so Close can end
		for _, p := range fifos {
			if w, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
		}
	})
	v2 := writeVersion(t, root, "classifier/2", "classifier", tenLabels...)
	mkfifo(filepath.Join(v2, "saved_model.pb"))
	v3 := writeVersion(t, root, "classifier/3", "classifier", tenLabels...)
	mkfifo(filepath.Join(v3, "assets", "labels.txt"))
	v4 := writeVersion(t, root, "classifier/4", "classifier", tenLabels...)
	mkfifo(filepath.Join(v4, "variables", "variables.data-00000-of-00001"))
	v5 := writeVersion(t, root, "classifier/5", "classifier", tenLabels...)
	mkfifo(filepath.Join(v5, WarmupDir, "a.png"))
	writeVersion(t, root, "classifier/6", "classifier", tenLabels...)
	for range 3 {
		if _, err := f.m.scan(); err != nil {
			t.Fatal(err)
		}
	}
	f.waitStates("classifier", "6:AVAILABLE 5:FAILED 1:AVAILABLE")
	for _, dir := range []string{v2, v3, v4} {
		if n := loads.count(dir); n != 0 {
			t.Errorf("%s was loaded %d times", dir, n)
		}
		if n := f.skips(dir); n != 1 {
			t.Errorf("%s: %d skipped lines, want 1", dir, n)
		}
	}
	st, _ := f.m.StatusOf("classifier")
	if err := fmt.Sprint(st.Versions[1].Err); !strings.Contains(err, "not a regular file") {
		t.Errorf("version 5's error %q, want it to say its warm-up image is not a regular file", err)
	}
}

// TestFailedForPermissionsIsRetriedOnChmod (as an unprivileged user): a
// version copied in as root with umask 077 fails to load (permission denied); the
// operator's fix, chmod or chown, changes no size or modification time, but it is a
// change of the folder: the version is tried again.
func TestFailedForPermissionsIsRetriedOnChmod(t *testing.T) {
	if !asUnprivileged(t) {
		return
	}
	var pbFile string
	f, loads, v2 := failedBeside(t, 5, func(v2 string) { // permission denied
		pbFile = filepath.Join(v2, "saved_model.pb")
		if err := os.Chmod(pbFile, 0); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(pbFile, 0o644) })
	})
	f.retriedAfter(loads, v2, "2:AVAILABLE", "the chmod", func() {
		if err := os.Chmod(pbFile, 0o644); err != nil {
			t.Fatal(err)
		}
	})
}

// TestWarmupFilesAreBounded: a warm-up image over 16 MiB (a video dropped in by
// mistake) fails its version without being read, as do more than 1,024 images.
func TestWarmupFilesAreBounded(t *testing.T) {
	root := t.TempDir()
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	f, _ := mustStartCounted(t, root, "model classifier\n  policy all\n")
	v2 := writeVersion(t, root, "classifier/2", "classifier", tenLabels...)
	os.MkdirAll(filepath.Join(v2, WarmupDir), 0o755)
	big, err := os.Create(filepath.Join(v2, WarmupDir, "big.png"))
	if err != nil {
		t.Fatal(err)
	}
	big.Truncate(maxWarmupBytes + 1) // sparse: no disk, but its size is what counts
	big.Close()
	v3 := writeVersion(t, root, "classifier/3", "classifier", tenLabels...)
	os.MkdirAll(filepath.Join(v3, WarmupDir), 0o755)
	for i := range maxWarmupFiles + 1 {
		os.WriteFile(filepath.Join(v3, WarmupDir, fmt.Sprintf("%04d.png", i)), nil, 0o644)
	}
	for range 2 {
		if _, err := f.m.scan(); err != nil {
			t.Fatal(err)
		}
	}
	f.waitStates("classifier", "3:FAILED 2:FAILED 1:AVAILABLE")
	st, _ := f.m.StatusOf("classifier")
	for i, want := range []string{"holds 1025 images, over the 1024 warm-up requests", "big.png is 16777217 bytes, over the limit of 16 MiB"} {
		if err := fmt.Sprint(st.Versions[i].Err); !strings.Contains(err, want) {
			t.Errorf("version %d's error %q, want %q", st.Versions[i].Version, err, want)
		}
	}
}
