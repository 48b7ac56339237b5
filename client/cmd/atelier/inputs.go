package main

import (
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
		if !d.IsDir() && imageExts[strings.ToLower(filepath.Ext(path))] {
			found = append(found, path)
		}
		return nil
	})
	sort.Strings(found)
	return found, err
}

// readInput reads one input's bytes ("-" is stdin).
func readInput(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(name)
}

// loadImage reads one input as an API image.
func loadImage(name string, stdin io.Reader) (*pb.Image, error) {
	b, err := readInput(name, stdin)
	if err != nil {
		return nil, err
	}
	return &pb.Image{Data: &pb.Image_Encoded{Encoded: b}}, nil
}
