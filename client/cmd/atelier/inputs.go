package main

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// imageExts are the file types folders are searched for.
var imageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true}

// expandInputs turns arguments into files: a folder becomes its PNG and JPEG files
// (recursively, sorted), a glob its matches, "-" stands for stdin, and anything else
// is taken as a file name (a missing one fails as that input, not the whole run).
func expandInputs(args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, usagef("no input: give files, folders, globs or - for stdin")
	}
	var files []string
	stdin := false
	for _, arg := range args {
		if arg == "-" {
			if stdin {
				return nil, usagef("- (stdin) may be given only once")
			}
			stdin = true
			files = append(files, arg)
			continue
		}
		if fi, err := os.Stat(arg); err == nil && fi.IsDir() {
			found, err := imagesIn(arg)
			if err != nil {
				return nil, err
			}
			if len(found) == 0 {
				return nil, usagef("folder %s holds no .png, .jpg or .jpeg file", arg)
			}
			files = append(files, found...)
			continue
		} else if err == nil {
			// A file that exists is itself, even if its name reads as a glob:
			// "photo [1].png" would otherwise match only "photo 1.png".
			files = append(files, arg)
			continue
		}
		if strings.ContainsAny(arg, "*?[") {
			matches, err := filepath.Glob(arg)
			if err != nil {
				return nil, usagef("bad pattern %q: %v", arg, err)
			}
			if len(matches) == 0 {
				return nil, usagef("no file matches %q", arg)
			}
			files = append(files, matches...)
			continue
		}
		files = append(files, arg)
	}
	return files, nil
}

func imagesIn(dir string) ([]string, error) {
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !imageExts[strings.ToLower(filepath.Ext(path))] {
			return nil
		}
		if !d.Type().IsRegular() {
			// A FIFO named like an image would block the run until someone writes to
			// it, a device would never end: a folder's images are its files (and
			// links to files; a broken link fails as its own input).
			if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
				return nil
			}
		}
		found = append(found, path)
		return nil
	})
	sort.Strings(found)
	return found, err
}

// maxInputBytes bounds one input: no request can carry a larger image.
const maxInputBytes = maxRequestBytes

// readInput reads one input's bytes ("-" is stdin). An input over maxInputBytes fails
// as a FILE error without being read whole: a regular file by its size, before any
// read; a pipe, a device or stdin (/dev/zero would never end) once that much is read.
func readInput(name string, stdin io.Reader) ([]byte, error) {
	r, size := stdin, int64(0)
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if size = fi.Size(); size > maxInputBytes {
				return nil, tooBig(name, fmt.Sprintf("%d bytes, ", size))
			}
		}
		r = f
	}
	// Room for the whole file and the read that finds its end, as os.ReadFile has.
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(r, maxInputBytes+1)); err != nil {
		return nil, err
	}
	if buf.Len() > maxInputBytes {
		return nil, tooBig(name, "")
	}
	return buf.Bytes(), nil
}

// tooBig is the FILE error of an input over maxInputBytes; size is its size and a
// comma, when known.
func tooBig(name, size string) error {
	return &os.PathError{Op: "read", Path: name,
		Err: fmt.Errorf("%sover the %d-byte limit of one image (the 64 MiB request limit, less room for the rest of the request)", size, maxInputBytes)}
}

// loadImage reads one input as an API image.
func loadImage(name string, stdin io.Reader) (*pb.Image, error) {
	b, err := readInput(name, stdin)
	if err != nil {
		return nil, err
	}
	return &pb.Image{Data: &pb.Image_Encoded{Encoded: b}}, nil
}
