package models

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"
)

// A version folder counts once it is complete (docs/RELOAD.md):
//   - it holds saved_model.pb and a variables/ folder, and
//   - the names, sizes, modification times, modes and owners of everything in it
//     (fingerprint) are the same at two scans in a row, one poll apart.
//
// A folder moved into place with a rename is complete at once, so it is loaded at the
// second scan that sees it (the first only notes its files: the server cannot tell a
// rename from a copy); a folder copied in place is loaded once the copy has stood
// still for a poll. A half-copied folder is never loaded.
//
// A folder that is there but cannot be read (its mode, an I/O error) is not a folder
// that was removed: what was loaded from it serves on, and the scan names it in
// skipped, which the manager logs once rather than at every poll.

// diskVersion is one version folder as a scan found it.
type diskVersion struct {
	dir string
	// fp is the fingerprint of the files that make the version (empty: not a SavedModel yet).
	fp string
	// unknown: the folder is there but could not be read, or two folders spell its
	// number ("7" and "007"); the manager leaves the version as it was.
	unknown bool
}

// scanResult is what one look at the model folder found.
type scanResult struct {
	// models are the version folders of each model, by name and number.
	models map[string]map[int64]diskVersion
	// unreadable are the model folders that are there but could not be listed: their
	// versions are left as they were, not taken as removed.
	unreadable map[string]bool
	// skipped are the folders that look like a model or a version but cannot be
	// taken, by path, and why.
	skipped map[string]string
}

// scanRoot lists root/<name>/<version>/ folders. Hidden names (".tmp-3") and
// non-numeric versions are skipped, so a staging folder inside the model's folder is
// invisible until it is renamed to its number; so is lost+found, which fsck keeps at
// the top of an ext4 volume and a server that is not root cannot read.
func scanRoot(root string) (scanResult, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return scanResult{}, fmt.Errorf("%w: %w", ErrRepository, err)
	}
	res := scanResult{models: map[string]map[int64]diskVersion{}, unreadable: map[string]bool{}, skipped: map[string]string{}}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || e.Name() == "lost+found" {
			continue
		}
		dir := filepath.Join(root, e.Name())
		// Stat follows symbolic links, so a linked model folder counts as a folder.
		info, err := os.Stat(dir)
		if missing(err) || err == nil && !info.IsDir() {
			continue // a file, or a link to nothing
		}
		if err == nil && !utf8.ValidString(e.Name()) {
			// Neither Prometheus' text format nor a protobuf string can carry the name:
			// serving it would break /metrics and GetModelStatus for every model.
			res.skipped[dir] = "the name is not valid UTF-8 (metrics and the API cannot carry it); rename the folder"
			continue
		}
		var vs []os.DirEntry
		if err == nil {
			vs, err = os.ReadDir(dir)
		}
		if err != nil {
			res.unreadable[e.Name()] = true
			res.skipped[dir] = fmt.Sprintf("cannot read it (%v); the versions loaded from it serve on", err)
			continue
		}
		versions, spelled := map[int64]diskVersion{}, map[int64][]string{}
		for _, ve := range vs {
			vdir := filepath.Join(dir, ve.Name())
			v, why := versionNumber(ve.Name())
			if why != "" {
				res.skipped[vdir] = why
			}
			if v == 0 {
				continue
			}
			d := diskVersion{dir: vdir}
			info, err := os.Stat(vdir)
			switch {
			case missing(err):
				continue // a link to nothing
			case err == nil && !info.IsDir():
				res.skipped[vdir] = "a file named as a version; a version is a folder"
				continue
			case err == nil:
				d.fp, err = fingerprint(vdir)
			}
			if err != nil {
				d = diskVersion{unknown: true}
				res.skipped[vdir] = fmt.Sprintf("cannot read it (%v); a version loaded from it serves on", err)
			}
			versions[v] = d
			spelled[v] = append(spelled[v], ve.Name())
		}
		for v, names := range spelled {
			if len(names) > 1 {
				// Either folder may be a different model: neither wins by its spelling.
				versions[v] = diskVersion{unknown: true}
				res.skipped[filepath.Join(dir, names[0])] = fmt.Sprintf("folders %q are all version %d: none is taken until one is left (a loaded version %d serves on)", names, v, v)
			}
		}
		if len(versions) > 0 {
			res.models[e.Name()] = versions
		}
	}
	return res, nil
}

// versionNumber reads a version folder's name: ASCII digits, leading zeros allowed
// ("00000123", as in TensorFlow Serving's examples). strconv.ParseInt alone would also
// take a sign ("+7"). It returns 0 for a name that is not a version (a staging or a
// notes folder), and why for a number that cannot be one, so that it is logged.
func versionNumber(name string) (v int64, why string) {
	if name == "" || strings.Trim(name, "0123456789") != "" {
		return 0, ""
	}
	v, err := strconv.ParseInt(name, 10, 64)
	switch {
	case err != nil:
		return 0, "the version number is beyond 9223372036854775807, the largest there can be"
	case v == 0:
		return 0, "version 0 is not a version (a request's version 0 means the newest); number versions from 1"
	}
	return v, ""
}

// missing reports an error that says a path is not there (a removed file, a link to
// nothing, a file where a folder was expected), as opposed to one that says it could
// not be read.
func missing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// fingerprint describes the version folder: saved_model.pb, every file under
// variables/ and assets/labels.txt, which the loader opens, and then every other entry
// at any depth (describeRest), by name, size, modification time, mode and owner. It is
// empty while saved_model.pb or variables/ is missing. An error says one of the
// loader's files is there but could not be read, or is a named pipe or a device, which
// would block the loader in open(2) for ever.
func fingerprint(dir string) (string, error) {
	var parts []string
	var failed error
	stat := func(rel string) bool {
		info, err := os.Stat(filepath.Join(dir, rel))
		if err == nil && !info.Mode().IsRegular() && !info.IsDir() {
			err = fmt.Errorf("%s is not a regular file (mode %v)", rel, info.Mode())
		}
		if err != nil {
			if !missing(err) && failed == nil {
				failed = err
			}
			return false
		}
		parts = append(parts, describe(rel, info))
		return true
	}
	if !stat("saved_model.pb") {
		return "", failed
	}
	vars, err := os.ReadDir(filepath.Join(dir, "variables"))
	if err != nil {
		if missing(err) {
			err = nil
		}
		return "", err
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
	if failed != nil {
		return "", failed
	}
	return strings.Join(describeRest(dir, parts), "|"), nil
}

// describe is one entry of a fingerprint. The mode and owner count too: the fix for a
// version that failed with "permission denied", a chmod or chown, changes neither size
// nor time, and a FAILED version is tried again only when its fingerprint changes.
func describe(rel string, info fs.FileInfo) string {
	owner := ""
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		owner = fmt.Sprintf(":%d:%d", st.Uid, st.Gid)
	}
	return fmt.Sprintf("%s:%d:%d:%v%s", rel, info.Size(), info.ModTime().UnixNano(), info.Mode(), owner)
}

// maxFingerprintEntries bounds describeRest: a version folder is a few files, plus at
// most maxWarmupFiles warm-up requests (warm-up fails a version with more).
const maxFingerprintEntries = 4 * maxWarmupFiles

// describeRest appends to parts the entries of the version folder that fingerprint's
// loader files leave out, the folder itself included: the warm-up requests in
// assets.extra/, build-report.json (the precision gate's input), other assets. So a
// version FAILED by one of them is tried again when it is fixed, and one still being
// written keeps the version out until it stands still. It only stats: a named pipe or
// a device is described by its mode, never opened (warm-up refuses one), and a
// folder is opened with O_DIRECTORY. A link is described by its target but not
// followed into a folder, so a loop costs nothing. An entry that cannot be read is
// described by its error, so that its fix is a change too. Past maxFingerprintEntries
// entries the walk stops; the folders' own modification times still change when
// entries come or go.
func describeRest(dir string, parts []string) []string {
	skip := map[string]bool{"saved_model.pb": true, "variables": true, filepath.Join("assets", "labels.txt"): true}
	if info, err := os.Stat(dir); err == nil {
		parts = append(parts, describe(".", info))
	}
	n := 0
	for queue := []string{""}; len(queue) > 0; queue = queue[1:] {
		rel := queue[0]
		f, err := os.OpenFile(filepath.Join(dir, rel), os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
		var entries []os.DirEntry
		if err == nil {
			entries, err = f.ReadDir(maxFingerprintEntries - n + 1)
			f.Close()
		}
		if err != nil && err != io.EOF {
			parts = append(parts, fmt.Sprintf("%s/:!%v", rel, err))
			continue
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		for _, e := range entries {
			erel := filepath.Join(rel, e.Name())
			if skip[erel] {
				continue
			}
			if n++; n > maxFingerprintEntries {
				return append(parts, fmt.Sprintf("over %d entries", maxFingerprintEntries))
			}
			info, err := os.Stat(filepath.Join(dir, erel))
			if err != nil {
				parts = append(parts, fmt.Sprintf("%s:!%v", erel, err))
				continue
			}
			parts = append(parts, describe(erel, info))
			if e.IsDir() { // the entry's own type: a link to a folder is not followed
				queue = append(queue, erel)
			}
		}
	}
	return parts
}
