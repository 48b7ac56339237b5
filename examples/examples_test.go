//go:build cgo

// Package examples_test runs every example (Go programs, Python scripts, grpcurl
// recipes) against a real server and checks what each prints.
package examples_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/servertest"
	"github.com/atelier-vision/atelier/internal/testenv"
)

func TestMain(m *testing.M) {
	code := servertest.Main(m)
	if goBuild.dir != "" {
		os.RemoveAll(goBuild.dir)
	}
	os.Exit(code)
}

// example is one example, run as a Go program and a Python script of the same name.
type example struct {
	name  string   // examples/go/NAME and examples/python/NAME.py
	rpcs  []string // the RPCs it calls, as named in servertest's rpcs.json
	args  func(t *testing.T) []string
	check func(t *testing.T, stdout string)
}

// recipe is one grpcurl recipe, examples/grpcurl/NAME.sh.
type recipe struct {
	name  string
	rpcs  []string
	args  func(t *testing.T) []string
	check func(t *testing.T, stdout string)
}

func boot(t *testing.T) string {
	return filepath.Join(testenv.Root(t), "docs", "images", "sample_boot.png")
}

func lines(t *testing.T, out string, want int) []string {
	t.Helper()
	l := strings.Split(strings.TrimSpace(out), "\n")
	if len(l) != want {
		t.Fatalf("got %d lines, want %d:\n%s", len(l), want, out)
	}
	return l
}

var examples = []example{
	{"classify", []string{"Classify"}, func(t *testing.T) []string { return []string{boot(t)} },
		func(t *testing.T, out string) { parseRanked(t, out) }},
	{"stream", []string{"ClassifyStream"}, func(t *testing.T) []string { return []string{boot(t), boot(t)} },
		func(t *testing.T, out string) {
			var frames []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if strings.HasPrefix(l, "frame ") {
					frames = append(frames, strings.Fields(l)[1])
				}
			}
			if strings.Join(frames, ",") != "1,2" {
				t.Fatalf("frames %v, want 1,2 in order:\n%s", frames, out)
			}
		}},
	{"detect", []string{"Detect"}, func(t *testing.T) []string { return []string{boot(t)} },
		func(t *testing.T, out string) {
			if !strings.Contains(out, "garments") {
				t.Fatalf("no garment count:\n%s", out)
			}
		}},
	{"generate", []string{"Generate"}, func(t *testing.T) []string {
		// A folder not made yet, as in the example's header (/tmp/designs).
		return []string{"--category", "Dress", "--count", "2", "--seed", "5", "--out", filepath.Join(t.TempDir(), "designs")}
	}, func(t *testing.T, out string) {
		for i, l := range lines(t, out, 2) {
			if want := []string{"design-5.png", "design-6.png"}[i]; filepath.Base(l) != want {
				t.Fatalf("wrote %s, want %s", l, want)
			}
			if b, err := os.ReadFile(l); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
				t.Fatalf("%s is not a PNG (%v)", l, err)
			}
		}
	}},
	{"models", []string{"ListModels", "GetModel"}, nil, func(t *testing.T, out string) {
		if !strings.Contains(out, "classifier 1 classifier 10 labels: T-shirt/top, Trouser") {
			t.Fatalf("no classifier line:\n%s", out)
		}
	}},
	{"alerts", []string{"WatchAlerts", "ClassifyStream"}, func(t *testing.T) []string {
		return []string{"--category", "Ankle boot", boot(t)}
	}, func(t *testing.T, out string) {
		if l := lines(t, out, 1)[0]; !strings.HasPrefix(l, "alert watch: Ankle boot ") || !strings.Contains(l, "on shop-window frame 1") {
			t.Fatalf("got %q, want the alert for the boot on frame 1", l)
		}
	}},
	{"health", []string{"Health"}, nil, func(t *testing.T, out string) {
		if out != "SERVING\n" {
			t.Fatalf("got %q, want SERVING", out)
		}
	}},
}

var recipes = []recipe{
	{"v2_metadata", []string{"Classify"}, nil, func(t *testing.T, out string) {
		for _, want := range []string{`"name": "atelier"`, `"name": "images"`, `"datatype": "UINT8"`, `"probabilities"`, `"FP32"`} {
			if !strings.Contains(out, want) {
				t.Fatalf("v2_metadata lacks %s:\n%s", want, out)
			}
		}
	}},
	{"v2_infer_image", []string{"Classify"}, func(t *testing.T) []string { return []string{boot(t)} },
		func(t *testing.T, out string) {
			var resp struct{ RawOutputContents []string }
			if err := json.Unmarshal([]byte(out), &resp); err != nil || len(resp.RawOutputContents) != 2 {
				t.Fatalf("v2_infer_image: %v\n%s", err, out)
			}
			label, _ := base64.StdEncoding.DecodeString(resp.RawOutputContents[0])
			if len(label) < 4 || string(label[4:]) != "Ankle boot" {
				t.Fatalf("v2_infer_image: label %q, want the sample boot's \"Ankle boot\" behind its length", label)
			}
		}},
	{"list", []string{}, nil, func(t *testing.T, out string) {
		for _, want := range []string{"atelier.v1.ClassifyService\n", "atelier.v1.ClassifyService.Classify\n",
			"atelier.v1.ModelService.GetModel\n", "grpc.health.v1.Health\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("list lacks %q", want)
			}
		}
	}},
	{"describe", []string{}, func(*testing.T) []string { return []string{"atelier.v1.ClassifyRequest"} },
		func(t *testing.T, out string) {
			if !strings.Contains(out, "atelier.v1.ClassifyRequest is a message") || !strings.Contains(out, "optional int32 top_k = 3;") {
				t.Fatalf("describe:\n%s", out)
			}
		}},
	{"classify", []string{"Classify"}, func(t *testing.T) []string { return []string{boot(t), "3"} },
		func(t *testing.T, out string) { parseGRPCurl(t, out) }},
	{"models", []string{"GetModel"}, func(*testing.T) []string { return []string{"classifier"} },
		func(t *testing.T, out string) {
			if !strings.Contains(out, `"name": "classifier"`) || !strings.Contains(out, `"Ankle boot"`) {
				t.Fatalf("GetModel:\n%s", out)
			}
		}},
	{"status", []string{"GetModelStatus"}, func(*testing.T) []string { return []string{"classifier"} },
		func(t *testing.T, out string) {
			if !strings.Contains(out, `"state": "VERSION_STATE_AVAILABLE"`) || !strings.Contains(out, `"policy": "latest 1"`) {
				t.Fatalf("GetModelStatus:\n%s", out)
			}
		}},
	{"status", []string{"GetModelStatus"}, func(*testing.T) []string { return []string{"classifier"} },
		func(t *testing.T, out string) {
			if !strings.Contains(out, `"state": "VERSION_STATE_AVAILABLE"`) || !strings.Contains(out, `"policy": "latest 1"`) {
				t.Fatalf("GetModelStatus:\n%s", out)
			}
		}},
	{"health", []string{"Health"}, nil, func(t *testing.T, out string) {
		if !strings.Contains(out, `"status": "SERVING"`) {
			t.Fatalf("health:\n%s", out)
		}
	}},
	{"detect", []string{"Detect"}, func(t *testing.T) []string { return []string{boot(t), "0.1"} },
		func(t *testing.T, out string) {
			if !strings.Contains(out, `"imageWidth": 28`) {
				t.Fatalf("detect:\n%s", out)
			}
		}},
	{"generate", []string{"Generate"}, func(*testing.T) []string { return []string{"Dress", "2", "7"} },
		func(t *testing.T, out string) {
			if strings.Count(out, `"png": "iVBORw0KGgo`) != 2 {
				t.Fatalf("want 2 base64 PNGs:\n%.500s", out)
			}
		}},
}

// adminRecipes are the recipes of the admin RPCs, run in this order by
// TestGRPCurlAdminRecipes against a server with tokens, with the admin token in
// $ATELIER_ADMIN_TOKEN_FILE.
var adminRecipes = []recipe{
	{"reload", []string{"Classify"}, nil, func(t *testing.T, out string) {
		if !strings.Contains(out, `"name": "classifier"`) || !strings.Contains(out, `"state": "VERSION_STATE_AVAILABLE"`) {
			t.Fatalf("ReloadRepository:\n%s", out)
		}
	}},
	{"label", []string{"Classify"}, func(*testing.T) []string { return []string{"classifier", "stable=1", "canary=1"} },
		func(t *testing.T, out string) {
			if !strings.Contains(out, `"stable": "1"`) || !strings.Contains(out, `"canary": "1"`) {
				t.Fatalf("SetVersionLabels:\n%s", out)
			}
		}},
	{"label", []string{"Classify"}, func(*testing.T) []string { return []string{"classifier", "canary=0"} },
		func(t *testing.T, out string) {
			if !strings.Contains(out, `"stable": "1"`) || strings.Contains(out, "canary") {
				t.Fatalf("SetVersionLabels canary=0 should leave stable alone and remove canary:\n%s", out)
			}
		}},
}

// TestGRPCurlAdminRecipes runs the admin recipes against a server of its own with
// --auth-tokens-file; without the token they fail with UNAUTHENTICATED.
func TestGRPCurlAdminRecipes(t *testing.T) {
	dir := t.TempDir()
	tokens, admin := filepath.Join(dir, "tokens"), filepath.Join(dir, "admin-token")
	const token = "examples-admin-0123456789abcdef"
	if err := os.WriteFile(tokens, []byte(token+" admin examples\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(admin, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := servertest.Start(t, "--auth-tokens-file", tokens).Addr
	grpcurl := testenv.Tool(t, "grpcurl")
	t.Setenv("GRPCURL", grpcurl)
	t.Setenv("ATELIER_ADMIN_TOKEN", "")
	root := testenv.Root(t)
	for _, name := range []string{"reload", "label"} {
		t.Run(name+" with a wrong token", func(t *testing.T) {
			cmd := exec.Command("bash", filepath.Join(root, "examples", "grpcurl", name+".sh"), "classifier", "stable=1")
			cmd.Env = append(os.Environ(), "ATELIER_ADDR="+addr, "ATELIER_ADMIN_TOKEN=wrong-0123456789abcdef")
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "Unauthenticated") {
				t.Fatalf("%s.sh with a wrong token: %v, want a failure saying Unauthenticated:\n%s", name, err, out)
			}
		})
	}
	t.Setenv("ATELIER_ADMIN_TOKEN_FILE", admin)
	runRecipes(t, addr, root, adminRecipes)
}

// require checks that the models the examples calling rpcs need are built.
func require(t *testing.T, rpcs []string) {
	t.Helper()
	for _, r := range rpcs {
		servertest.Require(t, r)
	}
}

// runExample runs a program with $ATELIER_ADDR set and checks its outcome.
func runExample(t *testing.T, addr string, check func(*testing.T, string), name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "ATELIER_ADDR="+addr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	check(t, stdout.String())
}

var goBuild struct {
	once sync.Once
	dir  string
	err  error
	out  []byte
}

// goExamples builds every Go example once and returns the folder holding them.
func goExamples(t *testing.T) string {
	t.Helper()
	goBuild.once.Do(func() {
		goBuild.dir, goBuild.err = os.MkdirTemp("", "atelier-examples-")
		if goBuild.err == nil {
			goBuild.out, goBuild.err = exec.Command("go", "build", "-o", goBuild.dir+"/", "./go/...").CombinedOutput()
		}
	})
	if goBuild.err != nil {
		t.Fatalf("go build ./go/...: %v\n%s", goBuild.err, goBuild.out)
	}
	return goBuild.dir
}

func TestExamples(t *testing.T) {
	addr := servertest.SharedT(t).Addr
	bin := goExamples(t)
	py := testenv.Python(t)
	root := testenv.Root(t)
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			require(t, ex.rpcs)
			var args []string
			if ex.args != nil {
				args = ex.args(t)
			}
			t.Run("go", func(t *testing.T) {
				runExample(t, addr, ex.check, filepath.Join(bin, ex.name), args...)
			})
			t.Run("python", func(t *testing.T) {
				script := filepath.Join(root, "examples", "python", ex.name+".py")
				runExample(t, addr, ex.check, py, append([]string{script}, args...)...)
			})
		})
	}
}

func TestGRPCurlRecipes(t *testing.T) {
	addr := servertest.SharedT(t).Addr
	grpcurl := testenv.Tool(t, "grpcurl")
	t.Setenv("GRPCURL", grpcurl)
	runRecipes(t, addr, testenv.Root(t), recipes)
}

// runRecipes runs each recipe, in order, against the server at addr.
func runRecipes(t *testing.T, addr, root string, recipes []recipe) {
	t.Helper()
	for _, r := range recipes {
		t.Run(r.name, func(t *testing.T) {
			require(t, r.rpcs)
			var args []string
			if r.args != nil {
				args = r.args(t)
			}
			script := filepath.Join(root, "examples", "grpcurl", r.name+".sh")
			runExample(t, addr, r.check, "bash", append([]string{script}, args...)...)
		})
	}
}

// runElsewhere names examples another package's tests run, and that test's file.
var runElsewhere = map[string]string{
	"python/stream_frames.py": "server/cmd/atelierd/stream_alert_test.go",
}

// TestEveryExampleIsRun fails when an example has no row in the tables above (or is
// not run by the test runElsewhere names).
func TestEveryExampleIsRun(t *testing.T) {
	root := testenv.Root(t)
	has := map[string]bool{}
	for ex, file := range runElsewhere {
		b, err := os.ReadFile(filepath.Join(root, file))
		if err != nil || !bytes.Contains(b, []byte(filepath.Base(ex))) {
			t.Errorf("examples/%s: %s does not run it (%v)", ex, file, err)
		}
		has[ex] = true
	}
	for _, e := range examples {
		has["go/"+e.name] = true
		has["python/"+e.name+".py"] = true
	}
	for _, r := range append(recipes, adminRecipes...) {
		has["grpcurl/"+r.name+".sh"] = true
	}
	var found []string
	for _, pattern := range []string{"go/*", "python/*.py", "grpcurl/*.sh"} {
		m, _ := filepath.Glob(filepath.Join(root, "examples", pattern))
		for _, f := range m {
			rel, _ := filepath.Rel(filepath.Join(root, "examples"), f)
			if !strings.HasPrefix(filepath.Base(rel), "_") {
				found = append(found, rel)
			}
		}
	}
	if len(found) != len(has) {
		t.Errorf("found %d examples, the tables run %d", len(found), len(has))
	}
	for _, f := range found {
		if !has[f] {
			t.Errorf("examples/%s is not run by any test: add a row", f)
		}
	}
}
