package generate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/tensor"
)

const (
	fakeZ    = 6
	fakeSide = 4
)

var fakeLabels = []string{"T-shirt/top", "Trouser", "Dress"}

// fakeEngine stands in for a generator: each pixel is a function of the latent and the
// label, so tests can tell designs apart without TensorFlow.
type fakeEngine struct{ batches []int }

func (f *fakeEngine) Run(_ context.Context, sig string, in map[string]*tensor.Tensor, _ []string) (map[string]*tensor.Tensor, error) {
	z, labels := in["z"], in["labels"]
	if sig != models.ServingSignature || z == nil || labels == nil || z.Shape[1] != fakeZ {
		return nil, fmt.Errorf("fake: unexpected call %s %v", sig, in)
	}
	n := int(z.Shape[0])
	f.batches = append(f.batches, n)
	pix := make([]uint8, n*fakeSide*fakeSide)
	for i := range n {
		for p := range fakeSide * fakeSide {
			pix[i*fakeSide*fakeSide+p] = uint8(int(labels.Int32[i])*50 + int(100+40*z.Float32[i*fakeZ+p%fakeZ]))
		}
	}
	out, err := tensor.NewUint8([]int64{int64(n), fakeSide, fakeSide, 1}, pix)
	return map[string]*tensor.Tensor{"images": out}, err
}

func (f *fakeEngine) Close() error { return nil }

// fakeRepo returns a repository with one fake generator, "generator" version 1, and
// one fake classifier, "classifier".
func fakeRepo(t *testing.T) (*models.Repository, *fakeEngine) {
	t.Helper()
	engine := &fakeEngine{}
	cm, err := models.NewModel(models.Spec{Name: "classifier", Version: 1}, "", engine, []tensor.Signature{{Name: models.ServingSignature,
		Inputs:  []tensor.Info{{Key: "images", DType: tensor.Uint8, Shape: []int64{-1, 4, 4, 1}}},
		Outputs: []tensor.Info{{Key: "probabilities", DType: tensor.Float32, Shape: []int64{-1, 3}}}}}, fakeLabels)
	if err != nil {
		t.Fatal(err)
	}
	gm, err := models.NewModel(models.Spec{Name: "generator", Version: 1}, "", engine, []tensor.Signature{{Name: models.ServingSignature,
		Inputs: []tensor.Info{{Key: "labels", DType: tensor.Int32, Shape: []int64{-1}},
			{Key: "z", DType: tensor.Float32, Shape: []int64{-1, fakeZ}}},
		Outputs: []tensor.Info{{Key: "images", DType: tensor.Uint8, Shape: []int64{-1, fakeSide, fakeSide, 1}}}}}, fakeLabels)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := models.NewRepository(cm, gm)
	if err != nil {
		t.Fatal(err)
	}
	return repo, engine
}

func TestGenerateSeeded(t *testing.T) {
	repo, engine := fakeRepo(t)
	g := &Generator{Repo: repo}
	req := Request{Category: "dress", Count: 3, Seed: 10}
	res, err := g.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Model != (models.Spec{Name: "generator", Version: 1}) || len(res.Designs) != 3 {
		t.Fatalf("got model %v with %d designs, want generator:1 with 3", res.Model, len(res.Designs))
	}
	if !slices.Equal(engine.batches, []int{3}) {
		t.Fatalf("got session runs of %v designs, want one run of 3", engine.batches)
	}
	for i, d := range res.Designs {
		if d.Category != "Dress" || !d.Seeded || d.Seed != 10+uint64(i) || !slices.Equal(d.Latent, Latent(10+uint64(i), fakeZ)) {
			t.Fatalf("design %d: got %q seed %d (seeded %v), want Dress from seed %d with its latent", i, d.Category, d.Seed, d.Seeded, 10+i)
		}
		decoded, err := png.Decode(bytes.NewReader(d.PNG))
		if err != nil || decoded.Bounds().Dx() != fakeSide {
			t.Fatalf("design %d: PNG does not decode to a %dx%d image: %v", i, fakeSide, fakeSide, err)
		}
	}
	again, err := g.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for i := range res.Designs {
		if !bytes.Equal(res.Designs[i].PNG, again.Designs[i].PNG) {
			t.Fatalf("design %d differs between two identical requests", i)
		}
	}
	if bytes.Equal(res.Designs[0].PNG, res.Designs[1].PNG) {
		t.Fatal("seeds 10 and 11 drew the same design")
	}
}

func TestGenerateExplicitLatents(t *testing.T) {
	repo, _ := fakeRepo(t)
	g := &Generator{Repo: repo}
	z := []float32{0.5, -1, 2, 0, 0, 1}
	res, err := g.Generate(context.Background(), Request{Category: "Trouser", Count: math.MaxInt, Latents: [][]float32{z, Latent(4, fakeZ)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Designs) != 2 || res.Designs[0].Seeded || !slices.Equal(res.Designs[0].Latent, z) {
		t.Fatalf("got %d designs, first seeded=%v latent %v; want 2 (count ignored), the first from %v", len(res.Designs), res.Designs[0].Seeded, res.Designs[0].Latent, z)
	}
	seeded, err := g.Generate(context.Background(), Request{Category: "Trouser", Count: 1, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(seeded.Designs[0].PNG, res.Designs[1].PNG) {
		t.Fatal("the latent of seed 4 sent back did not redraw seed 4's design")
	}
}

func TestGenerateRefuses(t *testing.T) {
	repo, _ := fakeRepo(t)
	g := &Generator{Repo: repo}
	latents := func(n, size int) [][]float32 {
		out := make([][]float32, n)
		for i := range out {
			out[i] = make([]float32, size)
		}
		return out
	}
	tests := []struct {
		name string
		req  Request
		want error
		msg  string
	}{
		{"count 0", Request{Category: "Dress"}, errkind.Invalid, "count 0 is out of range 1..64"},
		{"count over the bound", Request{Category: "Dress", Count: 65}, errkind.Invalid, "count 65 is out of range 1..64"},
		{"no category", Request{Count: 1}, errkind.Invalid, "category is required"},
		{"unknown category", Request{Category: "Hat", Count: 1}, errkind.Invalid, `unknown category "Hat" for generator:1 (categories: T-shirt/top, Trouser, Dress)`},
		{"latent too short", Request{Category: "Dress", Latents: latents(1, 2)}, errkind.Invalid, "latents[0] has 2 values, want 6"},
		{"latent too long", Request{Category: "Dress", Latents: latents(2, 7)}, errkind.Invalid, "latents[0] has 7 values, want 6"},
		{"NaN", Request{Category: "Dress", Latents: [][]float32{{0, 0, float32(math.NaN()), 0, 0, 0}}}, errkind.Invalid, "latents[0]: value 2 is NaN"},
		{"infinity", Request{Category: "Dress", Latents: [][]float32{{0, float32(math.Inf(-1))}}}, errkind.Invalid, "value 1 is -Inf"},
		{"too many latents", Request{Category: "Dress", Latents: latents(65, 6)}, errkind.Invalid, "65 latents is over the limit of 64"},
		{"unknown model", Request{Model: models.Spec{Name: "nope"}, Category: "Dress", Count: 1}, models.ErrNotFound, "no model named"},
		{"not a generator", Request{Model: models.Spec{Name: "classifier"}, Category: "Dress", Count: 1}, models.ErrWrongRole, "is a classifier, not a generator"},
		{"negative version", Request{Model: models.Spec{Name: "generator", Version: -1}, Category: "Dress", Count: 1}, errkind.Invalid, "model.version -1 is negative"},
		{"version and label", Request{Model: models.Spec{Version: 1, Label: "stable"}, Category: "Dress", Count: 1}, errkind.Invalid, "set model.version or model.version_label, not both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := g.Generate(context.Background(), tc.req)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v saying %q", err, tc.want, tc.msg)
			}
		})
	}
}

func TestInterpolate(t *testing.T) {
	repo, engine := fakeRepo(t)
	g := &Generator{Repo: repo}
	end := Latent(99, fakeZ)
	var steps []Step
	err := g.Interpolate(context.Background(), InterpolateRequest{
		Category: "Dress", Start: Point{Seed: 5}, End: Point{Latent: end}, Steps: 20,
	}, func(s Step) error {
		steps = append(steps, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 20 || !slices.Equal(engine.batches, []int{16, 4}) {
		t.Fatalf("got %d steps in runs of %v, want 20 in runs of [16 4]", len(steps), engine.batches)
	}
	for i, s := range steps {
		if s.Index != i || math.Abs(float64(s.T)-float64(i)/19) > 1e-6 {
			t.Fatalf("step %d: got index %d t %v, want t %v", i, s.Index, s.T, float64(i)/19)
		}
	}
	first, last := steps[0].Design, steps[19].Design
	if !first.Seeded || first.Seed != 5 || !slices.Equal(first.Latent, Latent(5, fakeZ)) {
		t.Fatalf("first step: got seed %d (seeded %v), want seed 5 and its latent", first.Seed, first.Seeded)
	}
	if last.Seeded || !slices.Equal(last.Latent, end) || steps[10].Design.Seeded {
		t.Fatal("last step must carry the explicit end latent and no seed; middle steps no seed")
	}
	g5, err := g.Generate(context.Background(), Request{Category: "Dress", Count: 1, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g5.Designs[0].PNG, first.PNG) {
		t.Fatal("the first step is not seed 5's design")
	}
}

func TestInterpolateStopsOnSendError(t *testing.T) {
	repo, engine := fakeRepo(t)
	g := &Generator{Repo: repo}
	gone := errors.New("client gone")
	sent := 0
	err := g.Interpolate(context.Background(), InterpolateRequest{Category: "Dress", Start: Point{Seed: 1}, End: Point{Seed: 2}, Steps: 100},
		func(Step) error {
			sent++
			return gone
		})
	if !errors.Is(err, gone) || sent != 1 || len(engine.batches) != 1 {
		t.Fatalf("got %v after %d sends and %d runs, want the send error after 1 send and 1 run", err, sent, len(engine.batches))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = g.Interpolate(ctx, InterpolateRequest{Category: "Dress", Start: Point{Seed: 1}, End: Point{Seed: 2}, Steps: 5}, func(Step) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: got %v, want context.Canceled", err)
	}
}

func TestInterpolateRefuses(t *testing.T) {
	repo, _ := fakeRepo(t)
	g := &Generator{Repo: repo}
	ok := func(s Step) error { return nil }
	tests := []struct {
		name string
		req  InterpolateRequest
		msg  string
	}{
		{"one step", InterpolateRequest{Category: "Dress", Steps: 1}, "steps 1 is out of range 2..128"},
		{"too many steps", InterpolateRequest{Category: "Dress", Steps: 129}, "steps 129 is out of range 2..128"},
		{"no category", InterpolateRequest{Steps: 3}, "category is required"},
		{"unknown category", InterpolateRequest{Category: "Hat", Steps: 3}, `unknown category "Hat"`},
		{"short start latent", InterpolateRequest{Category: "Dress", Steps: 3, Start: Point{Latent: []float32{1}}}, "start.latent has 1 values, want 6"},
		{"empty end latent", InterpolateRequest{Category: "Dress", Steps: 3, End: Point{Latent: []float32{}}}, "end.latent has 0 values, want 6"},
		{"NaN end", InterpolateRequest{Category: "Dress", Steps: 3, End: Point{Latent: []float32{float32(math.NaN())}}}, "end.latent: value 0 is NaN"},
		{"negative version", InterpolateRequest{Model: models.Spec{Version: -2}, Category: "Dress", Steps: 3}, "model.version -2 is negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := g.Interpolate(context.Background(), tc.req, ok)
			if !errors.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want errkind.Invalid saying %q", err, tc.msg)
			}
		})
	}
}

func FuzzValidate(f *testing.F) {
	f.Add("Dress", 3, uint64(1), float32(0.5), 2)
	f.Add("", 0, uint64(0), float32(math.NaN()), 65)
	f.Fuzz(func(t *testing.T, category string, count int, seed uint64, v float32, n int) {
		req := Request{Category: category, Count: count, Seed: seed}
		for range max(0, min(n, 100)) {
			req.Latents = append(req.Latents, []float32{v, v})
		}
		if err := Validate(req); err != nil && !errors.Is(err, errkind.Invalid) {
			t.Fatalf("Validate(%+v): got %v, want nil or errkind.Invalid", req, err)
		}
	})
}
