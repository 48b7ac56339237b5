package main

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// ran is what one in-process run of the CLI did.
type ran struct {
	code           int
	stdout, stderr string
}

// atelier runs the CLI in-process with $ATELIER_ADDR set to addr ("" for unset).
func atelier(t *testing.T, addr string, args ...string) ran {
	t.Helper()
	return atelierCtx(context.Background(), addr, args...)
}

// atelierCtx is atelier with the run's context (an interrupt cancels it).
func atelierCtx(ctx context.Context, addr string, args ...string) ran {
	var out, errOut bytes.Buffer
	code := run(ctx, args, env{
		stdout: &out, stderr: &errOut, stdin: strings.NewReader(""),
		getenv: func(k string) string {
			if k == "ATELIER_ADDR" {
				return addr
			}
			return ""
		},
	})
	return ran{code, out.String(), errOut.String()}
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestUsageErrors: every mistake on the command line exits 2 with a message that
// names it, before any call is made (the address is unreachable on purpose).
func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "a.png"), image.NewGray(image.Rect(0, 0, 4, 4)))
	writePNG(t, filepath.Join(dir, "b.png"), image.NewGray(image.Rect(0, 0, 4, 4)))
	empty := t.TempDir()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "usage: atelier COMMAND"},
		{"unknown command", []string{"clasify"}, `unknown command "clasify"`},
		{"unknown flag", []string{"classify", "--nope", "a.png"}, "flag provided but not defined: -nope"},
		{"bad output", []string{"models", "--output", "xml"}, "--output must be table, json or csv"},
		{"zero timeout", []string{"health", "--timeout", "0s"}, "--timeout must be positive"},
		{"top-k zero", []string{"classify", "--top-k", "0", "a.png"}, "--top-k must be 1..1000"},
		{"batch too big", []string{"classify", "--batch", "65", "a.png"}, "--batch 1..64"},
		{"no inputs", []string{"classify"}, "no input"},
		{"glob without match", []string{"classify", filepath.Join(dir, "*.jpg")}, "no file matches"},
		{"empty folder", []string{"classify", empty}, "holds no .png, .jpg or .jpeg file"},
		{"draw with two images", []string{"detect", "--draw", "x.png", filepath.Join(dir, "*.png")}, "--draw takes one input image, not 2"},
		{"min-score above 1", []string{"detect", "--min-score", "1.5", "a.png"}, "--min-score must be 0..1"},
		{"unknown tiling", []string{"detect", "--tiling", "sideways", "a.png"}, `--tiling must be auto, on or off, not "sideways"`},
		{"generate without category", []string{"generate"}, "--category is required"},
		{"generate with arguments", []string{"generate", "--category", "Dress", "extra"}, "generate takes no arguments"},
		{"stream policy", []string{"stream", "--policy", "newest", "a.png"}, "--policy must be block or latest"},
		{"stream alert syntax", []string{"stream", "--alert", "dresses", "a.png"}, "want NAME=CATEGORY"},
		{"describe without a name", []string{"describe"}, "describe takes one model name"},
		{"models with arguments", []string{"models", "x"}, "models takes no arguments"},
		{"health with two services", []string{"health", "a", "b"}, "at most one service name"},
		{"stdin twice", []string{"classify", "-", "-"}, "- (stdin) may be given only once"},
		{"plaintext to a remote host", []string{"health", "--addr", "shop.example:8500"}, "not a loopback address: use --tls-ca FILE or --tls for TLS, or --insecure"},
		{"tls ca file missing", []string{"health", "--tls-ca", filepath.Join(dir, "none.pem")}, "--tls-ca"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := atelier(t, "127.0.0.1:1", tc.args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, exitUsage, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("stderr lacks %q:\n%s", tc.want, r.stderr)
			}
			if r.stdout != "" {
				t.Fatalf("stdout should be empty on a usage error, got:\n%s", r.stdout)
			}
		})
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"classify", "-h"}, {"stream", "--help"}} {
		r := atelier(t, "", args...)
		if r.code != exitOK || !strings.Contains(r.stdout+r.stderr, "usage: atelier") {
			t.Fatalf("%v: exit %d, output %q; want 0 and the usage", args, r.code, r.stdout+r.stderr)
		}
	}
	if r := atelier(t, "", "help"); !strings.Contains(r.stdout, "exit codes: 0 ok") {
		t.Fatalf("help does not document the exit codes:\n%s", r.stdout)
	}
}

func TestParseInterleaved(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantPos []string
		wantK   int
	}{
		{"flags first", []string{"--top-k", "3", "a", "b"}, []string{"a", "b"}, 3},
		{"flags last", []string{"a", "b", "--top-k", "3"}, []string{"a", "b"}, 3},
		{"flags between", []string{"a", "--top-k=2", "b"}, []string{"a", "b"}, 2},
		{"double dash ends flags", []string{"a", "--", "--top-k", "b"}, []string{"a", "--top-k", "b"}, 1},
		{"stdin dash is an argument", []string{"-", "--top-k", "4"}, []string{"-"}, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &app{env: env{getenv: func(string) string { return "" }}}
			fs := newFlagSet(a)
			k := fs.Int("top-k", 1, "")
			pos, err := parseInterleaved(fs, tc.args)
			if err != nil || !reflect.DeepEqual(pos, tc.wantPos) || *k != tc.wantK {
				t.Fatalf("got %q, top-k %d, %v; want %q, %d", pos, *k, err, tc.wantPos, tc.wantK)
			}
		})
	}
}

func TestExpandInputs(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"b.png", "a.JPG", "sub/c.jpeg", "notes.txt", "sub/deeper/d.png"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	p := func(f string) string { return filepath.Join(dir, f) }
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"folder, recursive and sorted", []string{dir}, []string{p("a.JPG"), p("b.png"), p("sub/c.jpeg"), p("sub/deeper/d.png")}},
		{"glob", []string{p("*.png")}, []string{p("b.png")}},
		{"named files kept in order, even missing ones", []string{p("b.png"), p("zz.png")}, []string{p("b.png"), p("zz.png")}},
		{"stdin", []string{"-"}, []string{"-"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := expandInputs(tc.args)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestProgressLine(t *testing.T) {
	cases := []struct {
		done, total int
		elapsed     time.Duration
		want        string
	}{
		{0, 100, 0, "[>                             ]   0/100  0.0 files/s  ETA ? "},
		{50, 100, 4 * time.Second, "[===============>              ]  50/100  12.5 files/s  ETA 4s "},
		{100, 100, 8 * time.Second, "[==============================] 100/100  12.5 files/s  ETA 0s "},
	}
	for _, tc := range cases {
		if got := progressLine(tc.done, tc.total, tc.elapsed, "files"); got != tc.want {
			t.Errorf("progressLine(%d, %d, %v) =\n%q, want\n%q", tc.done, tc.total, tc.elapsed, got, tc.want)
		}
	}
}

func TestProgressShownOnlyWhenAsked(t *testing.T) {
	cases := []struct {
		name     string
		terminal bool
		forced   bool
		total    int
		want     bool
	}{
		{"pipe", false, false, 10, false},
		{"terminal", true, false, 10, true},
		{"forced", false, true, 10, true},
		{"one file", true, true, 1, false},
	}
	for _, tc := range cases {
		a := &app{env: env{stderr: &bytes.Buffer{}, stderrTerminal: tc.terminal}, progress: tc.forced}
		if got := newProgress(a, tc.total, "files") != nil; got != tc.want {
			t.Errorf("%s: bar shown %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCodeNames(t *testing.T) {
	for c, want := range map[codes.Code]string{codes.Canceled: "CANCELLED", codes.InvalidArgument: "INVALID_ARGUMENT",
		codes.Unimplemented: "UNIMPLEMENTED", codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.Code(99): "Code(99)"} {
		if got := codeName(c); got != want {
			t.Errorf("codeName(%v) = %q, want %q", c, got, want)
		}
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{"T-shirt/top": "t-shirt-top", "Ankle boot": "ankle-boot", "Bag": "bag"} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAnnotate draws two detections on a small grey image: it is enlarged, each box's
// edge has its garment's colour, and the label sits on a filled band.
func TestAnnotate(t *testing.T) {
	src := image.NewGray(image.Rect(0, 0, 40, 20))
	dets := []*pb.Detection{
		{Box: &pb.BoundingBox{XMin: 2, YMin: 4, XMax: 18, YMax: 18}, GarmentType: "top", Score: 0.9,
			Classification: &pb.Classification{Predictions: []*pb.Prediction{{Label: "Shirt"}}}},
		{Box: &pb.BoundingBox{XMin: 22, YMin: 0, XMax: 38, YMax: 20}, GarmentType: "footwear", Score: 0.7},
	}
	out := annotate(src, dets)
	scale := minDrawSide / 40
	if got := out.Bounds().Size(); got != image.Pt(40*scale, 20*scale) {
		t.Fatalf("annotated size %v, want %v", got, image.Pt(40*scale, 20*scale))
	}
	cases := []struct {
		name string
		x, y int
		want color.RGBA
	}{
		{"top box, left edge", 2 * scale, 12 * scale, garmentColors["top"]},
		{"top box, bottom edge", 10 * scale, 18*scale - 1, garmentColors["top"]},
		{"footwear box, right edge", 38*scale - 1, 10 * scale, garmentColors["footwear"]},
		{"inside a box stays the image", 10 * scale, 12 * scale, color.RGBA{0, 0, 0, 255}},
		{"outside every box", 20 * scale, 19 * scale, color.RGBA{0, 0, 0, 255}},
	}
	for _, tc := range cases {
		if got := out.RGBAAt(tc.x, tc.y); got != tc.want {
			t.Errorf("%s: pixel (%d,%d) is %v, want %v", tc.name, tc.x, tc.y, got, tc.want)
		}
	}
	// The top box's label band: filled with its colour, with white text in it.
	band := image.Rect(2*scale, 4*scale-14, 2*scale+40, 4*scale)
	colour, white := 0, 0
	for y := band.Min.Y; y < band.Max.Y; y++ {
		for x := band.Min.X; x < band.Max.X; x++ {
			switch out.RGBAAt(x, y) {
			case garmentColors["top"]:
				colour++
			case color.RGBA{255, 255, 255, 255}:
				white++
			}
		}
	}
	if colour == 0 || white < 20 {
		t.Fatalf("label band has %d coloured and %d white pixels, want a filled band with text", colour, white)
	}
}

func TestGrid(t *testing.T) {
	var pngs [][]byte
	for i := range 5 {
		img := image.NewGray(image.Rect(0, 0, 10, 10))
		for j := range img.Pix {
			img.Pix[j] = uint8(40 * i)
		}
		var buf bytes.Buffer
		png.Encode(&buf, img)
		pngs = append(pngs, buf.Bytes())
	}
	cases := []struct {
		name    string
		columns int
		size    image.Point
		cell4   image.Point // where the fifth design's top-left pixel lands
	}{
		{"square by default", 0, image.Pt(3*12+2, 2*12+2), image.Pt(2+1*12, 2+1*12)},
		{"one row", 5, image.Pt(5*12+2, 1*12+2), image.Pt(2+4*12, 2)},
		{"more columns than designs", 9, image.Pt(5*12+2, 1*12+2), image.Pt(2+4*12, 2)},
		{"two columns", 2, image.Pt(2*12+2, 3*12+2), image.Pt(2, 2+2*12)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, err := grid(pngs, tc.columns, 1)
			if err != nil {
				t.Fatal(err)
			}
			if g.Bounds().Size() != tc.size {
				t.Fatalf("sheet %v, want %v", g.Bounds().Size(), tc.size)
			}
			if got := g.RGBAAt(tc.cell4.X, tc.cell4.Y); got != (color.RGBA{160, 160, 160, 255}) {
				t.Fatalf("fifth design's corner is %v, want grey 160", got)
			}
			if got := g.RGBAAt(0, 0); got != (color.RGBA{255, 255, 255, 255}) {
				t.Fatalf("gap is %v, want white", got)
			}
		})
	}
	if _, err := grid(nil, 0, 1); err == nil {
		t.Fatal("grid of nothing succeeded")
	}
	big, err := grid(pngs[:2], 0, 96) // 10-pixel designs enlarged 9 times
	if err != nil || big.Bounds().Size() != image.Pt(2*(90+2)+2, 90+2+2) {
		t.Fatalf("enlarged sheet %v (%v), want %v", big.Bounds().Size(), err, image.Pt(2*92+2, 94))
	}
	if got := big.RGBAAt(2+92+89, 2+89); got != (color.RGBA{40, 40, 40, 255}) {
		t.Fatalf("enlarged second design's far corner is %v, want grey 40", got)
	}
}
