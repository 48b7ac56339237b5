// Package classify answers "which garment category is this?": it validates a request,
// prepares its images in parallel, runs the classifier and returns the top categories.
package classify

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"

	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/prep"
	"github.com/atelier-vision/atelier/internal/tf"
)

// ErrInvalidRequest marks a request that breaks the API's rules (counts, ranges).
var ErrInvalidRequest = errors.New("invalid request")

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
	// TopK is how many categories to return per image; 0 means DefaultTopK.
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

// Validate checks a request's counts and ranges without touching any model.
func Validate(req Request) error {
	switch {
	case len(req.Images) == 0:
		return fmt.Errorf("%w: no images (send 1 to %d)", ErrInvalidRequest, MaxImages)
	case len(req.Images) > MaxImages:
		return fmt.Errorf("%w: %d images is over the limit of %d per request", ErrInvalidRequest, len(req.Images), MaxImages)
	case req.TopK < 0 || req.TopK > MaxTopK:
		return fmt.Errorf("%w: top_k %d is out of range 1..%d", ErrInvalidRequest, req.TopK, MaxTopK)
	}
	return nil
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
	m, err := c.Repo.Get(req.Model, models.RoleClassifier)
	if err != nil {
		return Result{}, err
	}
	h, w, ch, err := m.ImageShape()
	if err != nil {
		return Result{}, err
	}
	n, size := len(req.Images), h*w*ch
	pix := make([]uint8, n*size)
	if err := parallel(ctx, n, func(i int) error {
		if err := c.Prep.Load(req.Images[i], h, w, ch, pix[i*size:(i+1)*size]); err != nil {
			return fmt.Errorf("image %d: %w", i, err)
		}
		return nil
	}); err != nil {
		return Result{}, err
	}
	probs, err := Run(ctx, m, pix, n, h, w, ch)
	if err != nil {
		return Result{}, err
	}
	k := req.TopK
	if k == 0 {
		k = DefaultTopK
	}
	res := Result{Model: m.Spec(), Predictions: make([][]Prediction, n)}
	for i, p := range probs {
		res.Predictions[i] = TopK(p, k, m.Labels)
	}
	return res, nil
}

// Run feeds n prepared images (uint8, n*h*w*c bytes) to the classifier and returns one
// probability row per image.
func Run(ctx context.Context, m *models.Model, pix []uint8, n, h, w, c int) ([][]float32, error) {
	in, err := tf.NewUint8([]int64{int64(n), int64(h), int64(w), int64(c)}, pix)
	if err != nil {
		return nil, err
	}
	out, err := m.Engine.Run(ctx, models.ServingSignature, map[string]*tf.Tensor{"images": in}, []string{"probabilities"})
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", m.Spec(), err)
	}
	p := out["probabilities"]
	if p == nil || len(p.Shape) != 2 || p.Shape[0] != int64(n) || p.Float32 == nil {
		return nil, fmt.Errorf("run %s: `probabilities` output is not float32 [%d, classes]", m.Spec(), n)
	}
	classes := int(p.Shape[1])
	rows := make([][]float32, n)
	for i := range rows {
		rows[i] = p.Float32[i*classes : (i+1)*classes]
	}
	return rows, nil
}

// TopK returns the k highest-scoring classes of probs, best first; ties keep class order.
func TopK(probs []float32, k int, labels []string) []Prediction {
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return probs[idx[a]] > probs[idx[b]] })
	k = min(k, len(idx))
	out := make([]Prediction, k)
	for i, j := range idx[:k] {
		label := fmt.Sprintf("class_%d", j)
		if j < len(labels) {
			label = labels[j]
		}
		out[i] = Prediction{Label: label, Index: j, Score: probs[j]}
	}
	return out
}

// parallel calls fn(0..n-1) on up to GOMAXPROCS goroutines and returns the first error.
func parallel(ctx context.Context, n int, fn func(i int) error) error {
	workers := min(n, runtime.GOMAXPROCS(0))
	next := make(chan int)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = fn(i)
			}
		}()
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}
