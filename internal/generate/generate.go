// Package generate draws new garment designs with a class-conditional generator: it
// checks a request, makes latent vectors from seeds (or takes them from the caller),
// runs the generator and encodes each design as a PNG. The same request gives the
// same bytes, and every design carries the seed and latent vector that made it.
package generate

import (
	"context"
	"fmt"

	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/models"
)

// interpolateChunk is how many interpolation steps share one session run; each chunk
// is sent as soon as it is drawn.
const interpolateChunk = 16

// Design is one generated image and what made it.
type Design struct {
	// PNG is the design as a PNG file.
	PNG []byte
	// Image is the decoded design (grey or RGB, the generator's size).
	Image    imageio.Image
	Category string
	// Seed made Latent when Seeded is true.
	Seed   uint64
	Seeded bool
	Latent []float32
}

// Result holds the designs in request order and the generator that drew them.
type Result struct {
	Model   models.Spec
	Designs []Design
}

// Step is one image of an interpolation: its index, its position T in [0, 1] between
// the start (0) and the end (1), and the design.
type Step struct {
	Index  int
	T      float32
	Design Design
}

// Generator runs requests against the repository's generators.
type Generator struct {
	Repo *models.Repository
}

// Generate checks req and draws its designs in one run of the generator.
func (g *Generator) Generate(ctx context.Context, req Request) (Result, error) {
	if err := Validate(req); err != nil {
		return Result{}, err
	}
	m, class, size, release, err := g.model(req.Model, req.Category)
	if err != nil {
		return Result{}, err
	}
	defer release()
	n := req.Count
	if len(req.Latents) > 0 {
		n = len(req.Latents) // count is ignored, however large
	}
	designs := make([]Design, n)
	for i := range designs {
		d := Design{Category: m.Labels[class]}
		if len(req.Latents) == 0 {
			d.Seed, d.Seeded = req.Seed+uint64(i), true
			d.Latent = Latent(d.Seed, size)
		} else {
			if err := checkLength(req.Latents[i], size, fmt.Sprintf("latents[%d]", i)); err != nil {
				return Result{}, err
			}
			d.Latent = append([]float32(nil), req.Latents[i]...)
		}
		designs[i] = d
	}
	if err := draw(ctx, m, class, designs); err != nil {
		return Result{}, err
	}
	return Result{Model: m.Spec(), Designs: designs}, nil
}

// Interpolate checks req and calls send with each step in order, drawing the steps in
// chunks so the first ones arrive before the last are drawn. It stops at the first
// error from send or from ctx.
func (g *Generator) Interpolate(ctx context.Context, req InterpolateRequest, send func(Step) error) error {
	if err := ValidateInterpolate(req); err != nil {
		return err
	}
	m, class, size, release, err := g.model(req.Model, req.Category)
	if err != nil {
		return err
	}
	defer release()
	start, err := endpoint(req.Start, size, "start")
	if err != nil {
		return err
	}
	end, err := endpoint(req.End, size, "end")
	if err != nil {
		return err
	}
	last := req.Steps - 1
	for first := 0; first <= last; first += interpolateChunk {
		designs := make([]Design, min(interpolateChunk, req.Steps-first))
		for j := range designs {
			i := first + j
			d := Design{Category: m.Labels[class], Latent: Slerp(start.Latent, end.Latent, float64(i)/float64(last))}
			switch {
			case i == 0:
				d.Seed, d.Seeded = start.Seed, start.Seeded
			case i == last:
				d.Seed, d.Seeded = end.Seed, end.Seeded
			}
			designs[j] = d
		}
		if err := draw(ctx, m, class, designs); err != nil {
			return err
		}
		for j, d := range designs {
			i := first + j
			if err := send(Step{Index: i, T: float32(float64(i) / float64(last)), Design: d}); err != nil {
				return err
			}
		}
	}
	return nil
}

// endpoint turns an interpolation end into a design carrying its latent vector.
func endpoint(p Point, size int, field string) (Design, error) {
	if p.Latent == nil {
		return Design{Seed: p.Seed, Seeded: true, Latent: Latent(p.Seed, size)}, nil
	}
	if err := checkLength(p.Latent, size, field+".latent"); err != nil {
		return Design{}, err
	}
	return Design{Latent: p.Latent}, nil
}

// model returns the requested generator, the category's class index and the latent
// size Z, read from the serving signature's `z` input [batch, Z]. The caller calls
// release when done with the model.
func (g *Generator) model(spec models.Spec, category string) (m *models.Model, class, size int, release func(), err error) {
	m, release, err = g.Repo.Acquire(spec, models.RoleGenerator)
	if err != nil {
		return nil, 0, 0, nil, err
	}
	if size, err = m.LatentSize(); err == nil {
		class, err = classIndex(m, category)
	}
	if err != nil {
		release()
		return nil, 0, 0, nil, err
	}
	return m, class, size, release, nil
}

// draw runs the generator once for all designs (their latents, one class) and fills
// in their images and PNG files.
func draw(ctx context.Context, m *models.Model, class int, designs []Design) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, size := len(designs), len(designs[0].Latent)
	z := make([]float32, 0, n*size)
	labels := make([]int32, n)
	for i, d := range designs {
		z = append(z, d.Latent...)
		labels[i] = int32(class)
	}
	images, err := m.Generate(ctx, z, labels)
	if err != nil {
		return err
	}
	for i, img := range images {
		png, err := imageio.EncodePNG(img)
		if err != nil {
			return fmt.Errorf("encode design %d: %w", i, err)
		}
		designs[i].Image, designs[i].PNG = img, png
	}
	return nil
}
