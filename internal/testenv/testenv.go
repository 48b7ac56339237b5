// Package testenv finds what the integration tests need (the repository root, built
// models, the project's Python) and decides what a missing piece means: under CI=true
// the test fails, on a developer's machine it is skipped with the command that fixes it.
// Its Buffer holds a log the test reads while the server or command still writes it.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// CI reports whether the tests run under CI (CI=true), where nothing may be skipped.
func CI() bool { return os.Getenv("CI") == "true" }

// Missing skips the test, or fails it under CI, explaining what is missing.
func Missing(t testing.TB, what, fix string) {
	t.Helper()
	if CI() {
		t.Fatalf("%s is missing under CI=true (%s)", what, fix)
	}
	t.Skipf("%s is missing; %s", what, fix)
}

// Root returns the repository root (the folder holding go.mod).
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

// ModelDir returns the repository's model folder, requiring the named built models.
func ModelDir(t testing.TB, names ...string) string {
	t.Helper()
	dir := filepath.Join(Root(t), "savedmodels")
	for _, n := range names {
		matches, _ := filepath.Glob(filepath.Join(dir, n, "*", "saved_model.pb"))
		if len(matches) == 0 {
			Missing(t, "built model "+n, "run `make models`")
		}
	}
	return dir
}

// Python returns the project's Python interpreter ($ATELIER_PYTHON or .venv/bin/python).
func Python(t testing.TB) string {
	t.Helper()
	py := os.Getenv("ATELIER_PYTHON")
	if py == "" {
		py = filepath.Join(Root(t), ".venv", "bin", "python")
	}
	if _, err := os.Stat(py); err != nil {
		Missing(t, "the project's Python ("+py+")", "run `make setup`")
	}
	return py
}

// Tool returns the path of a pinned Go tool in .tools/bin, or of a program on PATH.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(Root(t), ".tools", "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	Missing(t, name, "run `make setup`")
	return ""
}
