package main

import (
	"bytes"
	"flag"
	"fmt"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/atelier-vision/atelier/internal/fashionmnist"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/images/generated_grid.png from the built generator")

// minDiversityRatio is the floor for a category's pixel diversity (mean pairwise RMS
// difference of its designs) over the same figure for real test images of that
// category; see docs/MODELS.md for how it was chosen.
const minDiversityRatio = 0.6

// startGenerator serves the built generator and classifier.
func startGenerator(t testing.TB) *grpc.ClientConn {
	t.Helper()
	testenv.ModelDir(t, "generator", "classifier")
	_, conn := startApp(t)
	return conn
}

func generateOK(t testing.TB, c pb.GenerateServiceClient, req *pb.GenerateRequest) *pb.GenerateResponse {
	t.Helper()
	resp, err := c.Generate(ctxFor(t, time.Minute), req)
	if err != nil {
		t.Fatalf("Generate(%v): %v", req, err)
	}
	return resp
}

func decodeGrey(t testing.TB, data []byte) imageio.Image {
	t.Helper()
	im, err := imageio.Decode(data, imageio.DefaultLimits)
	if err != nil || im.Channels != 1 || im.Width != fashionmnist.Side || im.Height != fashionmnist.Side {
		t.Fatalf("design is not a 28x28 grey PNG: %v (%dx%dx%d)", err, im.Width, im.Height, im.Channels)
	}
	return im
}

func TestGenerateIsDeterministic(t *testing.T) {
	c := pb.NewGenerateServiceClient(startGenerator(t))
	req := &pb.GenerateRequest{Category: "Dress", Count: 8, Seed: 42}
	first, second := generateOK(t, c, req), generateOK(t, c, req)
	if first.Model.GetName() != "generator" || first.Model.GetVersion() != 1 || len(first.Images) != 8 {
		t.Fatalf("got %d images from %v, want 8 from generator:1", len(first.Images), first.Model)
	}
	for i, im := range first.Images {
		decodeGrey(t, im.Png)
		if !bytes.Equal(im.Png, second.Images[i].Png) {
			t.Fatalf("image %d: the same request gave different bytes", i)
		}
		if im.Seed != 42+uint64(i) || im.Category != "Dress" || len(im.Latent.GetValues()) == 0 {
			t.Fatalf("image %d: got seed %d category %q, want seed %d, Dress and its latent", i, im.Seed, im.Category, 42+i)
		}
		for j := range i {
			if bytes.Equal(im.Png, first.Images[j].Png) {
				t.Fatalf("seeds %d and %d drew the same image", 42+j, 42+i)
			}
		}
	}
	// Coming back to design 3: by its seed alone, and by its latent.
	bySeed := generateOK(t, c, &pb.GenerateRequest{Category: "Dress", Count: 1, Seed: 45})
	byLatent := generateOK(t, c, &pb.GenerateRequest{Category: "Dress", Latents: []*pb.Latent{first.Images[3].Latent}})
	if !bytes.Equal(bySeed.Images[0].Png, first.Images[3].Png) || !bytes.Equal(byLatent.Images[0].Png, first.Images[3].Png) {
		t.Fatal("seed 45 (or its latent) alone did not redraw design 3 of seed 42's batch byte for byte")
	}
}

func TestGenerateBadInput(t *testing.T) {
	conn := startGenerator(t)
	c := pb.NewGenerateServiceClient(conn)
	z := func(n int, v float32) *pb.Latent {
		l := &pb.Latent{Values: make([]float32, n)}
		for i := range l.Values {
			l.Values[i] = v
		}
		return l
	}
	size := len(generateOK(t, c, &pb.GenerateRequest{Category: "Bag", Count: 1}).Images[0].Latent.Values)
	many := make([]*pb.Latent, 65)
	for i := range many {
		many[i] = z(size, 0)
	}
	nan, inf := z(size, 0), z(size, 0)
	nan.Values[3], inf.Values[size-1] = float32(math.NaN()), float32(math.Inf(1))
	tests := []struct {
		name string
		req  *pb.GenerateRequest
		msg  string
	}{
		{"count 0", &pb.GenerateRequest{Category: "Bag"}, "count 0 is out of range 1..64"},
		{"count over the bound", &pb.GenerateRequest{Category: "Bag", Count: 65}, "count 65 is out of range 1..64"},
		{"huge count", &pb.GenerateRequest{Category: "Bag", Count: math.MaxUint32}, "count 4294967295 is out of range 1..64"},
		{"unknown category", &pb.GenerateRequest{Category: "Hat", Count: 1}, `unknown category "Hat"`},
		{"no category", &pb.GenerateRequest{Count: 1}, "category is required"},
		{"short latent", &pb.GenerateRequest{Category: "Bag", Latents: []*pb.Latent{z(size-1, 0)}}, "latents[0] has"},
		{"long latent", &pb.GenerateRequest{Category: "Bag", Latents: []*pb.Latent{z(size, 0), z(size+1, 0)}}, "latents[1] has"},
		{"NaN", &pb.GenerateRequest{Category: "Bag", Latents: []*pb.Latent{nan}}, "value 3 is NaN"},
		{"infinity", &pb.GenerateRequest{Category: "Bag", Latents: []*pb.Latent{inf}}, "is +Inf"},
		{"too many latents", &pb.GenerateRequest{Category: "Bag", Latents: many}, "65 latents is over the limit of 64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Generate(ctxFor(t, 30*time.Second), tc.req)
			if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tc.msg) {
				t.Fatalf("got %v, want InvalidArgument saying %q", err, tc.msg)
			}
		})
	}
	seed := func(s uint64) *pb.LatentPoint { return &pb.LatentPoint{Point: &pb.LatentPoint_Seed{Seed: s}} }
	steps := []struct {
		name string
		req  *pb.InterpolateRequest
		msg  string
	}{
		{"too many steps", &pb.InterpolateRequest{Category: "Bag", Start: seed(1), End: seed(2), Steps: 129}, "steps 129 is out of range 2..128"},
		{"one step", &pb.InterpolateRequest{Category: "Bag", Start: seed(1), End: seed(2), Steps: 1}, "steps 1 is out of range 2..128"},
		{"no end", &pb.InterpolateRequest{Category: "Bag", Start: seed(1), Steps: 5}, "end is required"},
		{"short end latent", &pb.InterpolateRequest{Category: "Bag", Start: seed(1), Steps: 5,
			End: &pb.LatentPoint{Point: &pb.LatentPoint_Latent{Latent: z(2, 0)}}}, "end.latent has 2 values"},
		{"NaN start", &pb.InterpolateRequest{Category: "Bag", End: seed(1), Steps: 5,
			Start: &pb.LatentPoint{Point: &pb.LatentPoint_Latent{Latent: nan}}}, "start.latent: value 3 is NaN"},
	}
	for _, tc := range steps {
		t.Run("interpolate "+tc.name, func(t *testing.T) {
			stream, err := c.Interpolate(ctxFor(t, 30*time.Second), tc.req)
			if err == nil {
				_, err = stream.Recv()
			}
			if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tc.msg) {
				t.Fatalf("got %v, want InvalidArgument saying %q", err, tc.msg)
			}
		})
	}
}

func TestInterpolateMorphs(t *testing.T) {
	c := pb.NewGenerateServiceClient(startGenerator(t))
	stream, err := c.Interpolate(ctxFor(t, time.Minute), &pb.InterpolateRequest{
		Category: "Ankle boot", Start: &pb.LatentPoint{Point: &pb.LatentPoint_Seed{Seed: 1}},
		End: &pb.LatentPoint{Point: &pb.LatentPoint_Seed{Seed: 2}}, Steps: 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	var images []imageio.Image
	var pngs [][]byte
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if int(r.Step) != len(images) || math.Abs(float64(r.T)-float64(r.Step)/19) > 1e-6 {
			t.Fatalf("got step %d t %v after %d steps, want step %d t %v", r.Step, r.T, len(images), len(images), float64(len(images))/19)
		}
		images = append(images, decodeGrey(t, r.Image.Png))
		pngs = append(pngs, r.Image.Png)
	}
	if len(images) != 20 {
		t.Fatalf("got %d steps, want 20", len(images))
	}
	ends := generateOK(t, c, &pb.GenerateRequest{Category: "Ankle boot", Count: 2, Seed: 1})
	if !bytes.Equal(pngs[0], ends.Images[0].Png) || !bytes.Equal(pngs[19], ends.Images[1].Png) {
		t.Fatal("the ends of the morph are not the designs of seeds 1 and 2")
	}
	span, largest := rms(images[0], images[19]), 0.0
	for i := 1; i < len(images); i++ {
		largest = max(largest, rms(images[i-1], images[i]))
	}
	t.Logf("RMS difference between the ends %.3f, largest between neighbouring steps %.3f", span, largest)
	if span < 0.05 || largest > span/2 {
		t.Fatalf("got ends %.3f apart and a step of %.3f, want distinct ends and steps under half the span", span, largest)
	}
}

// rms returns the root-mean-square difference of two grey images, in 0..1.
func rms(a, b imageio.Image) float64 {
	var sum float64
	for i := range a.Pix {
		d := float64(a.Pix[i]) - float64(b.Pix[i])
		sum += d * d
	}
	return math.Sqrt(sum/float64(len(a.Pix))) / 255
}

// diversity returns the mean RMS difference over all pairs of images.
func diversity(images []imageio.Image) float64 {
	var sum float64
	n := 0
	for i := range images {
		for j := range i {
			sum += rms(images[i], images[j])
			n++
		}
	}
	return sum / float64(n)
}

// TestGenerateQuality draws 100 designs of every category through Generate, has the
// server's Classify name them, and compares their diversity with real test images.
func TestGenerateQuality(t *testing.T) {
	conn := startGenerator(t)
	gen, cls := pb.NewGenerateServiceClient(conn), pb.NewClassifyServiceClient(conn)
	set := testSet(t)
	const perCategory, perRequest = 100, 50
	hits, total := 0, 0
	var spent time.Duration
	for class, category := range fashionmnist.Labels {
		var designs []imageio.Image
		correct := 0
		for seed := uint64(0); seed < perCategory; seed += perRequest {
			start := time.Now()
			resp := generateOK(t, gen, &pb.GenerateRequest{Category: category, Count: perRequest, Seed: 1000*uint64(class) + seed})
			spent += time.Since(start)
			creq := &pb.ClassifyRequest{TopK: proto.Int32(1)}
			for _, im := range resp.Images {
				designs = append(designs, decodeGrey(t, im.Png))
				creq.Images = append(creq.Images, encoded(im.Png))
			}
			cresp, err := cls.Classify(ctxFor(t, time.Minute), creq)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cresp.Classifications {
				if c.Predictions[0].Label == category {
					correct++
				}
			}
		}
		var real []imageio.Image
		for i, l := range set.Labels {
			if int(l) == class && len(real) < perCategory {
				real = append(real, imageio.Image{Width: fashionmnist.Side, Height: fashionmnist.Side, Channels: 1, Pix: set.Images[i]})
			}
		}
		got, want := diversity(designs), diversity(real)
		t.Logf("%-12s conditional accuracy %.2f, pixel diversity %.3f (real %.3f, ratio %.2f)",
			category, float64(correct)/perCategory, got, want, got/want)
		if got < minDiversityRatio*want {
			t.Errorf("%s: diversity %.3f is under %.2f x the real figure %.3f: the generator has collapsed", category, got, minDiversityRatio, want)
		}
		hits, total = hits+correct, total+perCategory
	}
	acc := float64(hits) / float64(total)
	t.Logf("conditional accuracy through Generate then Classify: %.4f over %d designs; Generate took %.2f ms per design",
		acc, total, float64(spent.Microseconds())/1000/float64(total))
	if acc < 0.80 {
		t.Fatalf("conditional accuracy %.4f, want at least 0.80", acc)
	}
}

// TestGeneratedGrid lays out 8 designs per category; with -update-docs it rewrites
// docs/images/generated_grid.png.
func TestGeneratedGrid(t *testing.T) {
	c := pb.NewGenerateServiceClient(startGenerator(t))
	var rows [][]imageio.Image
	for _, category := range fashionmnist.Labels {
		var row []imageio.Image
		for _, im := range generateOK(t, c, &pb.GenerateRequest{Category: category, Count: 8, Seed: 7}).Images {
			row = append(row, decodeGrey(t, im.Png))
		}
		rows = append(rows, row)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, labelledGrid(fashionmnist.Labels, rows, 3)); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if cfg, err := png.DecodeConfig(bytes.NewReader(data)); err != nil || cfg.Width < 8*84 || cfg.Height < 10*84 {
		t.Fatalf("grid is %v (%v), want at least 8 x 10 cells of 84 pixels", cfg, err)
	}
	if *updateDocs {
		out := filepath.Join(testenv.Root(t), "docs", "images", "generated_grid.png")
		if err := os.WriteFile(out, data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", out)
	}
}

// BenchmarkGenerate measures Generate through gRPC, one design and a full request.
func BenchmarkGenerate(b *testing.B) {
	c := pb.NewGenerateServiceClient(startGenerator(b))
	for _, n := range []uint32{1, 64} {
		b.Run(fmt.Sprintf("count=%d", n), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				generateOK(b, c, &pb.GenerateRequest{Category: "Coat", Count: n, Seed: uint64(i) * 64})
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N)/float64(n), "ms/design")
		})
	}
}
