package generate

import (
	"fmt"
	"math"
	"strings"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/models"
)

// Request limits, documented in proto/atelier/v1/generate_service.proto.
const (
	MaxCount = 64  // designs per Generate request
	MinSteps = 2   // images per interpolation, both ends included
	MaxSteps = 128 // images per interpolation
)

// Request asks for designs of one category.
type Request struct {
	Model    models.Spec
	Category string
	// Count is how many designs to draw, 1..MaxCount; ignored when Latents are given.
	Count int
	// Seed makes the latent vectors: design i uses Latent(Seed+i, Z).
	Seed uint64
	// Latents, when set, are used instead of seeded vectors (at most MaxCount).
	Latents [][]float32
}

// Point is one end of an interpolation: Latent when it is set, else Latent(Seed, Z).
type Point struct {
	Seed   uint64
	Latent []float32
}

// InterpolateRequest asks for Steps designs of one category on the way from Start to End.
type InterpolateRequest struct {
	Model      models.Spec
	Category   string
	Start, End Point
	// Steps is the number of designs including both ends, MinSteps..MaxSteps.
	Steps int
}

// Validate checks a Generate request's counts and values without touching any model.
func Validate(req Request) error {
	if req.Category == "" {
		return fmt.Errorf("%w: category is required", errkind.Invalid)
	}
	if len(req.Latents) == 0 && (req.Count < 1 || req.Count > MaxCount) {
		return fmt.Errorf("%w: count %d is out of range 1..%d", errkind.Invalid, req.Count, MaxCount)
	}
	if len(req.Latents) > MaxCount {
		return fmt.Errorf("%w: %d latents is over the limit of %d per request", errkind.Invalid, len(req.Latents), MaxCount)
	}
	for i, z := range req.Latents {
		if err := checkFinite(z); err != nil {
			return fmt.Errorf("%w: latents[%d]: %w", errkind.Invalid, i, err)
		}
	}
	return req.Model.Check("model")
}

// ValidateInterpolate checks an Interpolate request without touching any model.
func ValidateInterpolate(req InterpolateRequest) error {
	if req.Category == "" {
		return fmt.Errorf("%w: category is required", errkind.Invalid)
	}
	if req.Steps < MinSteps || req.Steps > MaxSteps {
		return fmt.Errorf("%w: steps %d is out of range %d..%d", errkind.Invalid, req.Steps, MinSteps, MaxSteps)
	}
	for _, p := range []struct {
		name string
		z    []float32
	}{{"start", req.Start.Latent}, {"end", req.End.Latent}} {
		if err := checkFinite(p.z); err != nil {
			return fmt.Errorf("%w: %s.latent: %w", errkind.Invalid, p.name, err)
		}
	}
	return req.Model.Check("model")
}

func checkFinite(z []float32) error {
	for j, v := range z {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("value %d is %v; every value must be finite", j, v)
		}
	}
	return nil
}

// classIndex returns the index of category among the model's labels. An exact match
// wins; otherwise case is ignored.
func classIndex(m *models.Model, category string) (int, error) {
	for i, l := range m.Labels {
		if l == category {
			return i, nil
		}
	}
	for i, l := range m.Labels {
		if strings.EqualFold(l, category) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown category %q for %s (categories: %s)",
		errkind.Invalid, category, m.Spec(), strings.Join(m.Labels, ", "))
}

// checkLength refuses a latent vector whose length is not the model's latent size.
func checkLength(z []float32, size int, field string) error {
	if len(z) != size {
		return fmt.Errorf("%w: %s has %d values, want %d (the generator's latent size)",
			errkind.Invalid, field, len(z), size)
	}
	return nil
}
