package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atelier-vision/atelier/internal/precision"
	"github.com/atelier-vision/atelier/internal/testenv"
	"github.com/atelier-vision/atelier/internal/tf"
)

// TestCalibrationReusedForTheSameGraph loads the embedded classifier and then a copy
// of it as a new version would come, at the default precision. Where auto runs bf16,
// the first load times bf16 against fp32 and the copy reuses that calibration (the
// same saved_model.pb) instead of timing again beside the serving version, and runs
// the same way. On a CPU without native bf16 neither load calibrates: both are fp32.
func TestCalibrationReusedForTheSameGraph(t *testing.T) {
	src := filepath.Join(testenv.ModelDir(t, "classifier"), "classifier", "1")
	src, err := filepath.EvalSymlinks(src)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "2")
	if err := os.CopyFS(cp, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	load := tfLoader(tf.Options{}, precision.Auto, 32, slog.New(slog.NewTextHandler(&logs, nil)))
	first, err := load(src, "")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Engine.Close()
	firstLogs := logs.String()
	second, err := load(cp, "")
	if err != nil {
		t.Fatal(err)
	}
	defer second.Engine.Close()
	secondLogs := strings.TrimPrefix(logs.String(), firstLogs)

	gate, err := precision.ReadGate(src)
	if err != nil {
		t.Fatal(err)
	}
	want, why := precision.Choose(precision.Auto, precision.HostCPU(), gate, nil)
	if want != precision.BF16 {
		if strings.Contains(logs.String(), "bf16 calibration") || first.Precision != precision.FP32 || second.Precision != precision.FP32 {
			t.Fatalf("auto chose fp32 (%s) but a load calibrated or ran %s/%s:\n%s", why, first.Precision, second.Precision, logs.String())
		}
		t.Logf("no native bf16 here (%s): neither load calibrated", why)
		return
	}
	if !strings.Contains(firstLogs, "bf16 calibration") || strings.Contains(firstLogs, "reused") {
		t.Fatalf("the first load did not time bf16 against fp32:\n%s", firstLogs)
	}
	if !strings.Contains(secondLogs, "bf16 calibration") || !strings.Contains(secondLogs, "reused") {
		t.Fatalf("the copy did not reuse the calibration:\n%s", secondLogs)
	}
	if first.Precision != second.Precision || first.BF16MinBatch != second.BF16MinBatch {
		t.Fatalf("the copy runs %s from batch %d, the first %s from batch %d",
			second.Precision, second.BF16MinBatch, first.Precision, first.BF16MinBatch)
	}
	t.Logf("both run %s from batch %d", first.Precision, max(first.BF16MinBatch, 1))
}
