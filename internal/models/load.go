package models

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/atelier-vision/atelier/internal/tensor"
)

// Loader opens one SavedModel folder and returns its engine and signatures; the
// binary passes one backed by internal/tf, tests pass fakes.
type Loader func(dir string) (tensor.Engine, []tensor.Signature, error)

// loadVersion opens one version folder: engine, labels and role.
func loadVersion(spec Spec, dir string, load Loader) (m *Model, err error) {
	engine, sigs, err := load(dir)
	if err != nil {
		return nil, err
	}
	labels, err := readLabels(filepath.Join(dir, "assets", "labels.txt"))
	if err != nil {
		engine.Close()
		return nil, err
	}
	m, err = NewModel(spec, dir, engine, sigs, labels)
	if err != nil {
		engine.Close()
		return nil, err
	}
	return m, nil
}

// readLabels reads one label per line; a model without labels.txt gets none.
func readLabels(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var labels []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if line := strings.TrimSpace(s.Text()); line != "" {
			labels = append(labels, line)
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return labels, nil
}
