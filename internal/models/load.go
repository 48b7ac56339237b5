package models

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/atelier-vision/atelier/internal/precision"
	"github.com/atelier-vision/atelier/internal/tensor"
)

// Loader opens one SavedModel folder in the precision asked for it (the model's
// `precision` line in the config; empty: the server's default) and returns what it
// loaded; the binary passes one backed by internal/tf, tests pass fakes.
type Loader func(dir string, setting precision.Setting) (Loaded, error)

// Loaded is a SavedModel opened by a Loader.
type Loaded struct {
	Engine     tensor.Engine
	Signatures []tensor.Signature
	// Precision is what the engine runs in ("" when the loader does not say).
	Precision precision.Precision
	// BF16MinBatch, when above 1, says the engine runs batches smaller than it in
	// fp32 and the rest in Precision, bf16 (a precision.Split).
	BF16MinBatch int
}

// loadVersion opens one version folder: engine, labels and role.
func loadVersion(spec Spec, dir string, setting precision.Setting, load Loader) (m *Model, err error) {
	l, err := load(dir, setting)
	if err != nil {
		return nil, err
	}
	engine, sigs := l.Engine, l.Signatures
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
	m.Precision, m.BF16MinBatch = l.Precision, l.BF16MinBatch
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
