package models

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/atelier-vision/atelier/internal/imageio"
)

// WarmupDir is where a SavedModel may carry its own warm-up requests:
// assets.extra/warmup/*.png or *.jpg, images of the model's input size (H x W, grey or
// RGB), for classifiers and detectors. Each runs alone, then all of them together as
// one batch (at most maxBatch of them).
const WarmupDir = "assets.extra/warmup"

// Warm-up requests' limits: the files run, and the bytes of one. An image of the
// model's input size is kilobytes; a file over the limit is a mistake (a video, a
// dataset) that would cost the server its memory at every load.
const (
	maxWarmupFiles = 1024
	maxWarmupBytes = 16 << 20
)

// WarmupSizes returns the batch sizes warm-up runs: 1, 2, 4, ... below maxBatch, and
// maxBatch itself. The batcher forms batches of any size up to maxBatch; these are the
// sizes whose first run pays for TensorFlow's one-off graph and kernel set-up.
func WarmupSizes(maxBatch int) []int {
	var sizes []int
	for n := 1; n < maxBatch; n *= 2 {
		sizes = append(sizes, n)
	}
	return append(sizes, max(maxBatch, 1))
}

// WarmUp runs m on synthetic batches of every WarmupSizes(maxBatch) size and on its
// own warm-up requests, and checks what it answers against its contract: a
// classifier's probability rows must be as wide as its labels. An error means the
// version must not take traffic.
func WarmUp(ctx context.Context, m *Model, maxBatch int) error {
	for _, n := range WarmupSizes(maxBatch) {
		if err := runSynthetic(ctx, m, n); err != nil {
			return fmt.Errorf("warm-up at batch size %d: %w", n, err)
		}
	}
	return runWarmupFiles(ctx, m, maxBatch)
}

func runSynthetic(ctx context.Context, m *Model, n int) error {
	switch m.Role {
	case RoleClassifier, RoleDetector:
		h, w, c, err := m.ImageShape()
		if err != nil {
			return err
		}
		return runImages(ctx, m, make([]uint8, n*h*w*c), n)
	case RoleGenerator:
		size, err := m.LatentSize()
		if err != nil {
			return err
		}
		_, err = m.Generate(ctx, make([]float32, n*size), make([]int32, n))
		return err
	}
	return fmt.Errorf("no warm-up for role %s", m.Role)
}

func runImages(ctx context.Context, m *Model, pix []uint8, n int) error {
	if m.Role == RoleDetector {
		_, err := m.Detect(ctx, pix, n)
		return err
	}
	rows, err := m.Classify(ctx, pix, n)
	if err != nil {
		return err
	}
	if len(m.Labels) > 0 && len(rows) > 0 && len(rows[0]) != len(m.Labels) {
		return fmt.Errorf("assets/labels.txt has %d labels but `probabilities` has %d classes", len(m.Labels), len(rows[0]))
	}
	return nil
}

// runWarmupFiles runs the images in the model's WarmupDir, if it has one.
func runWarmupFiles(ctx context.Context, m *Model, maxBatch int) error {
	entries, err := os.ReadDir(filepath.Join(m.Dir, WarmupDir))
	if err != nil || (m.Role != RoleClassifier && m.Role != RoleDetector) {
		return nil
	}
	h, w, c, err := m.ImageShape()
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if ext == ".png" || ext == ".jpg" || ext == ".jpeg" {
			names = append(names, e.Name())
		}
	}
	if len(names) > maxWarmupFiles {
		return fmt.Errorf("%s holds %d images, over the %d warm-up requests a version may carry", WarmupDir, len(names), maxWarmupFiles)
	}
	sort.Strings(names)
	var all []uint8
	for i, name := range names {
		path := filepath.Join(m.Dir, WarmupDir, name)
		// A named pipe or a device would block ReadFile, and with it the loader, for ever.
		info, err := os.Stat(path)
		switch {
		case err != nil:
		case !info.Mode().IsRegular():
			err = fmt.Errorf("warm-up request %s/%s is not a regular file (mode %v)", WarmupDir, name, info.Mode())
		case info.Size() > maxWarmupBytes:
			err = fmt.Errorf("warm-up request %s/%s is %d bytes, over the limit of %d MiB", WarmupDir, name, info.Size(), maxWarmupBytes>>20)
		}
		var data []byte
		if err == nil {
			data, err = os.ReadFile(path)
		}
		if err != nil {
			return err
		}
		im, err := imageio.Decode(data, imageio.DefaultLimits)
		if err == nil && (im.Width != w || im.Height != h) {
			err = fmt.Errorf("is %dx%d, want the model's input size %dx%d", im.Width, im.Height, w, h)
		}
		if err == nil {
			im, err = im.ToChannels(c)
		}
		if err == nil {
			err = runImages(ctx, m, im.Pix, 1)
		}
		if err != nil {
			return fmt.Errorf("warm-up request %s/%s: %w", WarmupDir, name, err)
		}
		if i < maxBatch {
			all = append(all, im.Pix...)
		}
	}
	if n := min(len(names), maxBatch); n > 1 {
		if err := runImages(ctx, m, all, n); err != nil {
			return fmt.Errorf("warm-up requests as one batch of %d: %w", n, err)
		}
	}
	return nil
}
