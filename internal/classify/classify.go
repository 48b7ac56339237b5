// Package classify answers "which garment category is this?": it validates a request,
// prepares its images in parallel, runs the classifier and returns the top categories.
package classify

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/parallel"
	"github.com/atelier-vision/atelier/internal/prep"
)

// Request limits and defaults, documented in proto/atelier/v1/classify_service.proto.
const (
	MaxImages   = 64
	DefaultTopK = 5
	MaxTopK     = 1000
)

// Request asks for the top categories of some images.
type Request struct {
	Model  models.Spec
	Images []imageio.Source
	// TopK is how many categories to return per image, 1..MaxTopK (the handler fills
	// in DefaultTopK when the client leaves it unset).
	TopK int
}

// Prediction is one category and its probability.
type Prediction struct {
	Label string
	Index int
	Score float32
}

// Result holds each image's predictions, best first, and the model that answered.
type Result struct {
	Model       models.Spec
	Predictions [][]Prediction
}

// Validate checks a request's counts, ranges and model spec without touching any model.
func Validate(req Request) error {
	switch {
	case len(req.Images) == 0:
		return fmt.Errorf("%w: no images (send 1 to %d)", errkind.Invalid, MaxImages)
	case len(req.Images) > MaxImages:
		return fmt.Errorf("%w: %d images is over the limit of %d per request", errkind.Invalid, len(req.Images), MaxImages)
	case req.TopK < 1 || req.TopK > MaxTopK:
		return fmt.Errorf("%w: top_k %d is out of range 1..%d", errkind.Invalid, req.TopK, MaxTopK)
	}
	return req.Model.Check("model")
}

// Classifier runs classification requests against the repository's classifiers.
type Classifier struct {
	Repo *models.Repository
	Prep *prep.Preparer
}

// Classify validates req, prepares its images and returns their top categories.
func (c *Classifier) Classify(ctx context.Context, req Request) (Result, error) {
	if err := Validate(req); err != nil {
		return Result{}, err
	}
	m, release, err := c.Repo.Acquire(req.Model, models.RoleClassifier)
	if err != nil {
		return Result{}, err
	}
	defer release()
	return c.classify(ctx, m, req)
}

// Labels returns the name and version of the classifier spec names now, and its
// labels: what a stream's alert rules can watch for.
func (c *Classifier) Labels(spec models.Spec) (map[string][]string, error) {
	m, err := c.Repo.Get(spec, models.RoleClassifier)
	if err != nil {
		return nil, err
	}
	return map[string][]string{m.Spec().String(): m.Labels}, nil
}

// ClassifyOn is Classify on a classifier version the caller already holds (from
// Repository.Acquire), whatever req.Model says; a caller that has to answer from the
// version it resolved uses it, since asking the repository again could find that
// version retired in between.
func (c *Classifier) ClassifyOn(ctx context.Context, m *models.Model, req Request) (Result, error) {
	if err := Validate(req); err != nil {
		return Result{}, err
	}
	if m.Role != models.RoleClassifier {
		return Result{}, fmt.Errorf("%w: model %q is a %s, not a %s", models.ErrWrongRole, m.Name, m.Role, models.RoleClassifier)
	}
	return c.classify(ctx, m, req)
}

// classify runs a validated req on a classifier version the caller holds.
func (c *Classifier) classify(ctx context.Context, m *models.Model, req Request) (Result, error) {
	h, w, ch, err := m.ImageShape()
	if err != nil {
		return Result{}, err
	}
	n, size := len(req.Images), h*w*ch
	pix := make([]uint8, n*size)
	if err := parallel.For(ctx, n, runtime.GOMAXPROCS(0), func(i int) error {
		if err := c.Prep.Load(req.Images[i], h, w, ch, pix[i*size:(i+1)*size]); err != nil {
			return fmt.Errorf("image %d: %w", i, err)
		}
		return nil
	}); err != nil {
		return Result{}, err
	}
	probs, err := m.Classify(ctx, pix, n)
	if err != nil {
		return Result{}, err
	}
	res := Result{Model: m.Spec(), Predictions: make([][]Prediction, n)}
	for i, p := range probs {
		res.Predictions[i] = TopK(p, req.TopK, m)
	}
	return res, nil
}

// TopK returns the k highest-scoring classes of probs, best first, labelled by the
// model that scored them; ties keep class order.
func TopK(probs []float32, k int, m *models.Model) []Prediction {
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(probs[b], probs[a]) })
	k = min(k, len(idx))
	out := make([]Prediction, k)
	for i, j := range idx[:k] {
		out[i] = Prediction{Label: m.Label(j), Index: j, Score: probs[j]}
	}
	return out
}
