//go:build cgo

package examples_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/atelier-vision/atelier/client"
	"github.com/atelier-vision/atelier/internal/servertest"
	"github.com/atelier-vision/atelier/internal/testenv"
)

// ranked is a classification as every path can print it: "label score" lines with
// the score rounded to 6 decimals from the server's float32.
type ranked []string

func rank(label string, score float32) string { return fmt.Sprintf("%s %.6f", label, score) }

// parseRanked reads the Go and Python examples' "label score" lines.
func parseRanked(t *testing.T, out string) ranked {
	t.Helper()
	var r ranked
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		i := strings.LastIndex(l, " ")
		score, err := strconv.ParseFloat(l[i+1:], 32)
		if i < 0 || err != nil || score < 0 || score > 1 {
			t.Fatalf("line %q is not \"label score\"", l)
		}
		r = append(r, l)
	}
	return r
}

// parseGRPCurl reads grpcurl's JSON answer of Classify.
func parseGRPCurl(t *testing.T, out string) ranked {
	t.Helper()
	var resp struct {
		Classifications []struct {
			Predictions []struct {
				Label string
				Score float64
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil || len(resp.Classifications) != 1 {
		t.Fatalf("grpcurl output is not one classification (%v):\n%s", err, out)
	}
	var r ranked
	for _, p := range resp.Classifications[0].Predictions {
		r = append(r, rank(p.Label, float32(p.Score)))
	}
	return r
}

// TestSameClassificationEverywhere classifies one image through the Go library, the
// Go example, the CLI, the Python example and the grpcurl recipe: all five must give
// the same top 3 with the same scores.
func TestSameClassificationEverywhere(t *testing.T) {
	addr := servertest.SharedT(t).Addr
	root := testenv.Root(t)
	img := boot(t)
	output := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "ATELIER_ADDR="+addr, "GRPCURL="+testenv.Tool(t, "grpcurl"))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
		}
		return stdout.String()
	}

	c, err := client.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pbImg, err := client.ImageFile(img)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ClassifyImages(context.Background(), 3, pbImg)
	if err != nil {
		t.Fatal(err)
	}
	var want ranked
	for _, p := range got[0].Predictions {
		want = append(want, rank(p.Label, p.Score))
	}

	cli := filepath.Join(t.TempDir(), "atelier")
	if out, err := exec.Command("go", "build", "-o", cli, "../client/cmd/atelier").CombinedOutput(); err != nil {
		t.Fatalf("building the CLI: %v\n%s", err, out)
	}
	var cliOut []struct {
		Predictions []struct {
			Label string
			Score float32
		}
	}
	if err := json.Unmarshal([]byte(output(cli, "classify", "--top-k", "3", "--output", "json", img)), &cliOut); err != nil || len(cliOut) != 1 {
		t.Fatalf("CLI JSON: %v", err)
	}
	var fromCLI ranked
	for _, p := range cliOut[0].Predictions {
		fromCLI = append(fromCLI, rank(p.Label, p.Score))
	}

	paths := []struct {
		name string
		got  ranked
	}{
		{"Go example", parseRanked(t, output(filepath.Join(goExamples(t), "classify"), "-top-k", "3", img))},
		{"CLI", fromCLI},
		{"Python example", parseRanked(t, output(testenv.Python(t), filepath.Join(root, "examples", "python", "classify.py"), "--top-k", "3", img))},
		{"grpcurl recipe", parseGRPCurl(t, output("bash", filepath.Join(root, "examples", "grpcurl", "classify.sh"), img, "3"))},
	}
	t.Logf("Go library: %q", want)
	for _, p := range paths {
		if strings.Join(p.got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: got %q, want %q (the Go library's)", p.name, p.got, want)
		}
	}
}
