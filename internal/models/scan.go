package models

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// A version folder counts once it is complete (docs/RELOAD.md):
//   - it holds saved_model.pb and a variables/ folder, and
//   - their names, sizes and modification times (and assets/labels.txt's) are the same
//     at two scans in a row, one poll apart.
//
// A folder moved into place with a rename is complete at once, so it is loaded at the
// second scan that sees it (the first only notes its files: the server cannot tell a
// rename from a copy); a folder copied in place is loaded once the copy has stood
// still for a poll. A half-copied folder is never loaded.

// diskVersion is one version folder as a scan found it.
type diskVersion struct {
	dir string
	// fp is the fingerprint of the files that make the version (empty: not a SavedModel yet).
	fp string
}

// scanRoot lists root/<name>/<version>/ folders. Hidden names (".tmp-3") and
// non-numeric versions are skipped, so a staging folder inside the model's folder is
// invisible until it is renamed to its number.
func scanRoot(root string) (map[string]map[int64]diskVersion, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("model repository: %w", err)
	}
	out := map[string]map[int64]diskVersion{}
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		// Stat follows symbolic links, so a linked model folder counts as a folder.
		if info, err := os.Stat(dir); err != nil || !info.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		vs, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, ve := range vs {
			v, err := strconv.ParseInt(ve.Name(), 10, 64)
			if err != nil || v <= 0 {
				continue
			}
			vdir := filepath.Join(dir, ve.Name())
			if info, err := os.Stat(vdir); err != nil || !info.IsDir() {
				continue
			}
			if out[e.Name()] == nil {
				out[e.Name()] = map[int64]diskVersion{}
			}
			out[e.Name()][v] = diskVersion{dir: vdir, fp: fingerprint(vdir)}
		}
	}
	return out, nil
}

// fingerprint describes saved_model.pb, every file under variables/ and
// assets/labels.txt by name, size and modification time; it is empty while
// saved_model.pb or variables/ is missing.
func fingerprint(dir string) string {
	var parts []string
	stat := func(rel string) bool {
		info, err := os.Stat(filepath.Join(dir, rel))
		if err != nil {
			return false
		}
		parts = append(parts, fmt.Sprintf("%s:%d:%d", rel, info.Size(), info.ModTime().UnixNano()))
		return true
	}
	if !stat("saved_model.pb") {
		return ""
	}
	vars, err := os.ReadDir(filepath.Join(dir, "variables"))
	if err != nil {
		return ""
	}
	names := make([]string, 0, len(vars))
	for _, f := range vars {
		names = append(names, f.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		stat(filepath.Join("variables", n))
	}
	stat(filepath.Join("assets", "labels.txt"))
	return strings.Join(parts, "|")
}
