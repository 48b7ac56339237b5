//go:build cgo

package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atelier-vision/atelier/internal/fashionmnist"
	"github.com/atelier-vision/atelier/internal/servertest"
	"github.com/atelier-vision/atelier/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(servertest.Main(m)) }

// fashionFolder writes the first n Fashion-MNIST test images as PNGs into a folder.
func fashionFolder(t *testing.T, n int) string {
	t.Helper()
	set, err := fashionmnist.Load("", "test")
	if err != nil {
		testenv.Missing(t, "Fashion-MNIST", "apt-get install dataset-fashion-mnist ("+err.Error()+")")
	}
	dir := t.TempDir()
	for i := range n {
		img := &image.Gray{Pix: set.Images[i], Stride: fashionmnist.Side, Rect: image.Rect(0, 0, fashionmnist.Side, fashionmnist.Side)}
		writePNG(t, filepath.Join(dir, fmt.Sprintf("item%03d.png", i)), img)
	}
	return dir
}

// TestClassifyFormatsParse classifies a folder of 40 images in batches of 8 in each
// output format: JSON and CSV parse, and all three formats hold the same answers.
func TestClassifyFormatsParse(t *testing.T) {
	addr := servertest.SharedT(t).Addr
	dir := fashionFolder(t, 40)
	args := []string{"classify", "--batch", "8", "--top-k", "3", dir}

	j := atelier(t, addr, append(args, "--output", "json")...)
	if j.code != exitOK {
		t.Fatalf("json: exit %d\n%s", j.code, j.stderr)
	}
	var results []classifyResult
	if err := json.Unmarshal([]byte(j.stdout), &results); err != nil {
		t.Fatalf("JSON output does not parse: %v\n%s", err, j.stdout)
	}
	if len(results) != 40 {
		t.Fatalf("JSON has %d results, want 40", len(results))
	}
	for i, r := range results {
		if want := filepath.Join(dir, fmt.Sprintf("item%03d.png", i)); r.File != want || len(r.Predictions) != 3 || r.Error != nil {
			t.Fatalf("result %d: %+v, want %s with 3 predictions and no error", i, r, want)
		}
		if r.Model == nil || r.Model.Name != "classifier" {
			t.Fatalf("result %d names model %v, want classifier", i, r.Model)
		}
	}

	c := atelier(t, addr, append(args, "--output", "csv")...)
	rows, err := csv.NewReader(strings.NewReader(c.stdout)).ReadAll()
	if c.code != exitOK || err != nil {
		t.Fatalf("csv: exit %d, parse error %v\n%s", c.code, err, c.stderr)
	}
	if len(rows) != 1+40*3 || strings.Join(rows[0], ",") != "file,rank,label,class_index,score,model,version,error_code,error_message" {
		t.Fatalf("CSV has %d rows (header %v), want a header and 120", len(rows), rows[0])
	}
	for i, row := range rows[1:] {
		r := results[i/3].Predictions[i%3]
		if row[2] != r.Label || row[3] != fmt.Sprint(r.ClassIndex) || row[1] != fmt.Sprint(i%3+1) {
			t.Fatalf("CSV row %d %v disagrees with JSON %+v", i+1, row, r)
		}
	}

	tb := atelier(t, addr, args...)
	lines := strings.Split(strings.TrimSpace(tb.stdout), "\n")
	if tb.code != exitOK || len(lines) != 41 || !strings.HasPrefix(lines[0], "FILE") {
		t.Fatalf("table: exit %d, %d lines, want 0 and a header plus 40", tb.code, len(lines))
	}
	for i, line := range lines[1:] {
		if f := strings.Fields(line); f[0] != results[i].File || !strings.Contains(line, results[i].Predictions[0].Label) {
			t.Fatalf("table line %q disagrees with JSON %+v", line, results[i])
		}
	}
}

// TestClassifyFailures: exit 3 when some inputs of a batch fail (a corrupt image
// shares its request with good ones, which still get answers), 1 when all do or the
// server is unreachable.
func TestClassifyFailures(t *testing.T) {
	addr := servertest.SharedT(t).Addr
	dir := fashionFolder(t, 5)
	os.WriteFile(filepath.Join(dir, "item002.png"), []byte("not a png"), 0o644) // replaces a good one
	missing := filepath.Join(dir, "missing.png")
	cases := []struct {
		name      string
		addr      string
		args      []string
		wantExit  int
		wantCodes map[string]string // file -> error code; others must succeed
		wantErr   string
	}{
		{"corrupt image in a batch", addr, []string{dir}, exitPartial,
			map[string]string{"item002.png": "INVALID_ARGUMENT"}, "1 of 5 inputs failed"},
		{"missing file", addr, []string{filepath.Join(dir, "item000.png"), missing}, exitPartial,
			map[string]string{"missing.png": "FILE"}, "missing.png: FILE: open"},
		{"every input fails", addr, []string{filepath.Join(dir, "item002.png")}, exitError,
			map[string]string{"item002.png": "INVALID_ARGUMENT"}, "1 of 1 inputs failed"},
		{"unknown model", addr, []string{"--model", "nope", filepath.Join(dir, "item000.png")}, exitError,
			map[string]string{"item000.png": "NOT_FOUND"}, "NOT_FOUND"},
		{"server down", "127.0.0.1:1", []string{"--timeout", "3s", filepath.Join(dir, "item000.png")}, exitError,
			map[string]string{"item000.png": "UNAVAILABLE"}, "UNAVAILABLE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := atelier(t, tc.addr, append([]string{"classify", "--output", "json", "--batch", "8"}, tc.args...)...)
			if r.code != tc.wantExit || !strings.Contains(r.stderr, tc.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tc.wantExit, tc.wantErr)
			}
			var results []classifyResult
			if err := json.Unmarshal([]byte(r.stdout), &results); err != nil {
				t.Fatalf("JSON output does not parse: %v\n%s", err, r.stdout)
			}
			for _, res := range results {
				want, bad := tc.wantCodes[filepath.Base(res.File)]
				switch {
				case bad && (res.Error == nil || res.Error.Code != want):
					t.Errorf("%s: error %v, want %s", res.File, res.Error, want)
				case !bad && (res.Error != nil || len(res.Predictions) != 1):
					t.Errorf("%s: %+v, want one prediction", res.File, res)
				}
			}
		})
	}
}

// TestClassifyProgressBar: --progress draws the bar with rate and ETA on stderr only.
func TestClassifyProgressBar(t *testing.T) {
	addr := servertest.SharedT(t).Addr
	dir := fashionFolder(t, 20)
	r := atelier(t, addr, "classify", "--progress", "--batch", "4", "--output", "csv", dir)
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"20/20", "files/s", "ETA", "[=============================="} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("progress bar lacks %q:\n%q", want, r.stderr)
		}
	}
	if strings.Contains(r.stdout, "ETA") {
		t.Error("the progress bar leaked into stdout")
	}
}

// TestModelsDescribeHealth checks the model and health commands in every format.
func TestModelsDescribeHealth(t *testing.T) {
	addr := servertest.SharedT(t).Addr
	cases := []struct {
		name  string
		args  []string
		check func(t *testing.T, out string)
	}{
		{"models json", []string{"models", "--output", "json"}, func(t *testing.T, out string) {
			var v struct {
				Models []struct{ Name, Role string }
			}
			mustJSON(t, out, &v)
			if !hasModel(v.Models, "classifier", "MODEL_ROLE_CLASSIFIER") {
				t.Fatalf("no classifier in %+v", v.Models)
			}
		}},
		{"models csv", []string{"models", "--output", "csv"}, func(t *testing.T, out string) {
			rows := mustCSV(t, out)
			if rows[0][0] != "name" || !containsRow(rows, "classifier", "classifier") {
				t.Fatalf("CSV %v lacks a classifier row", rows)
			}
		}},
		{"models table", []string{"models"}, func(t *testing.T, out string) {
			if !strings.Contains(out, "classifier  classifier") {
				t.Fatalf("table lacks the classifier:\n%s", out)
			}
		}},
		{"describe json", []string{"describe", "classifier", "--output", "json"}, func(t *testing.T, out string) {
			var v struct {
				Name     string
				Versions []struct{ Labels []string }
			}
			mustJSON(t, out, &v)
			if v.Name != "classifier" || len(v.Versions) == 0 || len(v.Versions[0].Labels) != 10 {
				t.Fatalf("describe: %+v, want the classifier with 10 labels", v)
			}
		}},
		{"describe csv", []string{"describe", "classifier", "--output", "csv"}, func(t *testing.T, out string) {
			rows := mustCSV(t, out)
			if !containsRow(rows, "serving_default", "input", "images", "uint8") ||
				!containsRow(rows, "serving_default", "output", "probabilities", "float32", "[-1,10]") {
				t.Fatalf("CSV lacks the serving signature:\n%s", out)
			}
		}},
		{"describe table", []string{"describe", "classifier"}, func(t *testing.T, out string) {
			if !strings.Contains(out, "signature serving_default") || !strings.Contains(out, "labels (10): T-shirt/top") ||
				!strings.Contains(out, "\n  precision ") {
				t.Fatalf("table:\n%s", out)
			}
		}},
		{"health", []string{"health"}, func(t *testing.T, out string) {
			if out != "SERVING\n" {
				t.Fatalf("got %q, want SERVING", out)
			}
		}},
		{"health json", []string{"health", "atelier.v1.ClassifyService", "--output", "json"}, func(t *testing.T, out string) {
			var v map[string]string
			mustJSON(t, out, &v)
			if v["status"] != "SERVING" || v["service"] != "atelier.v1.ClassifyService" {
				t.Fatalf("got %v", v)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := atelier(t, addr, tc.args...)
			if r.code != exitOK {
				t.Fatalf("exit %d\n%s", r.code, r.stderr)
			}
			tc.check(t, r.stdout)
		})
	}
	for _, bad := range []struct {
		args []string
		want string
	}{{[]string{"describe", "nope"}, "atelier: describe: NOT_FOUND: "}, {[]string{"health", "no.such.Service"}, "atelier: health: NOT_FOUND: "}} {
		if r := atelier(t, addr, bad.args...); r.code != exitError || !strings.HasPrefix(r.stderr, bad.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", bad.args, r.code, r.stderr, bad.want)
		}
	}
}

// TestEveryRPCCommand runs the command of each RPC in servertest's rpcs.json.
func TestEveryRPCCommand(t *testing.T) {
	addr := servertest.SharedT(t).Addr
	boot := filepath.Join(testenv.Root(t), "docs", "images", "sample_boot.png")
	out := t.TempDir()
	cases := []struct {
		rpc   string
		args  []string
		check func(t *testing.T, stdout string)
	}{
		{"Classify", []string{"classify", boot}, nil},
		{"ListModels", []string{"models"}, nil},
		{"GetModel", []string{"describe", "classifier"}, nil},
		{"GetModelStatus", []string{"models", "--output", "csv"}, func(t *testing.T, stdout string) {
			if rows := mustCSV(t, stdout); !strings.Contains(strings.Join(rows[1], ","), ":AVAILABLE") {
				t.Fatalf("got %v, want an AVAILABLE version", rows)
			}
		}},
		{"Health", []string{"health"}, nil},
		{"Detect", []string{"detect", "--output", "json", "--draw", filepath.Join(out, "boxes.png"), boot}, func(t *testing.T, stdout string) {
			var v []detectResult
			mustJSON(t, stdout, &v)
			if len(v) != 1 || v[0].ImageWidth != 28 {
				t.Fatalf("got %+v, want one 28-pixel-wide result", v)
			}
			mustPNG(t, filepath.Join(out, "boxes.png"))
		}},
		{"Generate", []string{"generate", "--category", "Dress", "--count", "3", "--out-dir", out, "--grid", filepath.Join(out, "grid.png"), "--output", "csv"},
			func(t *testing.T, stdout string) {
				if rows := mustCSV(t, stdout); len(rows) != 4 {
					t.Fatalf("CSV has %d rows, want a header and 3", len(rows))
				}
				mustPNG(t, filepath.Join(out, "grid.png"))
			}},
		{"Interpolate", []string{"generate", "--category", "Dress", "--steps", "4", "--output", "json"}, func(t *testing.T, stdout string) {
			var v []design
			mustJSON(t, stdout, &v)
			if len(v) != 4 || v[3].T != 1 {
				t.Fatalf("got %+v, want 4 steps ending at t=1", v)
			}
			// The ends are the seeds (0 and 1 by default); a blend between has none.
			if v[0].Seed == nil || *v[0].Seed != 0 || v[3].Seed == nil || *v[3].Seed != 1 || v[1].Seed != nil || v[2].Seed != nil {
				t.Fatalf("got seeds %v %v %v %v, want 0, none, none, 1", v[0].Seed, v[1].Seed, v[2].Seed, v[3].Seed)
			}
		}},
		{"ClassifyStream", []string{"stream", "--output", "json", boot, boot, boot}, func(t *testing.T, stdout string) {
			var v []streamEvent
			mustJSON(t, stdout, &v)
			if len(v) < 3 || v[0].FrameID != 1 {
				t.Fatalf("got %+v, want results for 3 frames", v)
			}
		}},
		{"DetectStream", []string{"stream", "--detect", "--output", "json", boot, boot}, func(t *testing.T, stdout string) {
			var v []streamEvent
			mustJSON(t, stdout, &v)
			if len(v) < 2 {
				t.Fatalf("got %+v, want results for 2 frames", v)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.rpc, func(t *testing.T) {
			servertest.Require(t, tc.rpc)
			r := atelier(t, addr, tc.args...)
			if r.code != exitOK {
				t.Fatalf("exit %d, want 0\n%s", r.code, r.stderr)
			}
			if tc.check != nil {
				tc.check(t, r.stdout)
			}
		})
	}
}

// TestBinary builds the real atelier and checks its exit codes and $ATELIER_ADDR.
func TestBinary(t *testing.T) {
	addr := servertest.SharedT(t).Addr
	bin := filepath.Join(t.TempDir(), "atelier")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	boot := filepath.Join(testenv.Root(t), "docs", "images", "sample_boot.png")
	cases := []struct {
		name string
		env  string
		args []string
		want int
	}{
		{"classify via ATELIER_ADDR", addr, []string{"classify", boot}, exitOK},
		{"--addr wins over the environment", "127.0.0.1:1", []string{"health", "--addr", addr}, exitOK},
		{"usage error", addr, []string{"classify", "--top-k", "-1", boot}, exitUsage},
		{"server down", "127.0.0.1:1", []string{"health", "--timeout", "2s"}, exitError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append(os.Environ(), "ATELIER_ADDR="+tc.env)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.want {
				t.Fatalf("exit %d, want %d\n%s", code, tc.want, stderr.String())
			}
		})
	}
}

func mustCSV(t *testing.T, s string) [][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(s)).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("output is not CSV: %v\n%s", err, s)
	}
	return rows
}

func mustPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.DecodeConfig(f); err != nil {
		t.Fatalf("%s is not a PNG: %v", path, err)
	}
}

func hasModel(ms []struct{ Name, Role string }, name, role string) bool {
	for _, m := range ms {
		if m.Name == name && m.Role == role {
			return true
		}
	}
	return false
}

// containsRow reports whether some row holds every cell of want, in order.
func containsRow(rows [][]string, want ...string) bool {
	for _, r := range rows {
		if strings.Contains(","+strings.Join(r, ",")+",", ","+strings.Join(want, ",")+",") {
			return true
		}
	}
	return false
}
