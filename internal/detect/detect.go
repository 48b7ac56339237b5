// Package detect answers "what is this person wearing?": it runs the detector on an
// image, maps the boxes to the image's pixels, and classifies every box's crop of the
// full-resolution image with the classifier, all crops of a request in one batch.
package detect

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/atelier-vision/atelier/internal/classify"
	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/prep"
)

// Request limits and defaults, documented in proto/atelier/v1/detect_service.proto.
const (
	DefaultMinScore      = 0.5
	DefaultMaxDetections = 20
	MaxDetections        = 100
	DefaultTopK          = 1
)

// Request asks for the garments in one image.
type Request struct {
	Model models.Spec
	Image imageio.Source
	// MinScore drops detections scoring below it, in [0, 1].
	MinScore float32
	// MaxDetections caps the detections returned, 1..MaxDetections.
	MaxDetections      int
	SkipClassification bool
	Classifier         models.Spec
	// TopK is how many fine categories to return per garment, 1..classify.MaxTopK.
	TopK int
	// Tiling says whether the detector also searches tiles of a large picture.
	Tiling Tiling
}

// Box is a rectangle in the original image's pixel coordinates; the max edges are
// exclusive, so a box covering the whole image is (0, 0, width, height).
type Box struct {
	XMin, YMin, XMax, YMax float32
}

// Detection is one garment found in the image.
type Detection struct {
	Box Box
	// Type is the detector's coarse class (its label), TypeIndex its class index.
	Type      string
	TypeIndex int
	Score     float32
	// Classification is the classifier's top categories for the crop, best first;
	// nil when classification was skipped.
	Classification []classify.Prediction
}

// Result is the garments found, best first, and the models that answered.
type Result struct {
	Detector models.Spec
	// Classifier is the zero Spec when classification was skipped or nothing was found.
	Classifier    models.Spec
	Detections    []Detection
	Width, Height int
}

// Defaults is a request with every documented default filled in; handlers start
// from it and set what the client set.
var Defaults = Request{MinScore: DefaultMinScore, MaxDetections: DefaultMaxDetections, TopK: DefaultTopK}

// Validate checks a request's ranges and model specs without touching any model.
func Validate(req Request) error {
	switch {
	case math.IsNaN(float64(req.MinScore)) || req.MinScore < 0 || req.MinScore > 1:
		return fmt.Errorf("%w: min_score %v is out of range [0, 1]", errkind.Invalid, req.MinScore)
	case req.MaxDetections < 1 || req.MaxDetections > MaxDetections:
		return fmt.Errorf("%w: max_detections %d is out of range 1..%d", errkind.Invalid, req.MaxDetections, MaxDetections)
	case req.TopK < 1 || req.TopK > classify.MaxTopK:
		return fmt.Errorf("%w: top_k %d is out of range 1..%d", errkind.Invalid, req.TopK, classify.MaxTopK)
	case req.Tiling < TilingAuto || req.Tiling > TilingOn:
		return fmt.Errorf("%w: tiling %d is not one of auto, off, on", errkind.Invalid, int(req.Tiling))
	}
	if err := req.Model.Check("model"); err != nil {
		return err
	}
	// Checked even when classification is skipped: the spec is wrong either way, and
	// the repository's own message would name it "model".
	return req.Classifier.Check("classifier")
}

// Detector runs detection requests against the repository's detectors and classifiers.
type Detector struct {
	Repo *models.Repository
	Prep *prep.Preparer
	// KeepBackground hands the classifier the crops as they are, background and all,
	// instead of taking the background level out (see Crop). The embedded classifier,
	// which learnt garments on black, needs it out; one trained on photos may not.
	KeepBackground bool
}

// Labels returns, by name and version, the labels of the detector req names now and
// of its classifier (unless classification is skipped): the garment types and fine
// categories a stream's alert rules can watch for.
func (d *Detector) Labels(req Request) (map[string][]string, error) {
	dm, err := d.Repo.Get(req.Model, models.RoleDetector)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{dm.Spec().String(): dm.Labels}
	if !req.SkipClassification {
		cm, err := d.Repo.Get(req.Classifier, models.RoleClassifier)
		if err != nil {
			return nil, err
		}
		out[cm.Spec().String()] = cm.Labels
	}
	return out, nil
}

// Detect validates req, finds the garments in its image and classifies each one.
func (d *Detector) Detect(ctx context.Context, req Request) (Result, error) {
	if err := Validate(req); err != nil {
		return Result{}, err
	}
	dm, release, err := d.Repo.Acquire(req.Model, models.RoleDetector)
	if err != nil {
		return Result{}, err
	}
	defer release()
	var cm *models.Model
	if !req.SkipClassification {
		var releaseC func()
		if cm, releaseC, err = d.Repo.Acquire(req.Classifier, models.RoleClassifier); err != nil {
			return Result{}, err
		}
		defer releaseC()
	}
	im, err := req.Image.Decode(d.Prep.Limits)
	if err != nil {
		return Result{}, err
	}
	dets, err := d.find(ctx, dm, im, req)
	if err != nil {
		return Result{}, err
	}
	res := Result{Detector: dm.Spec(), Detections: dets, Width: im.Width, Height: im.Height}
	if cm == nil || len(dets) == 0 {
		return res, nil
	}
	if err := d.classifyCrops(ctx, cm, im, dets, req.TopK); err != nil {
		return Result{}, err
	}
	res.Classifier = cm.Spec()
	return res, nil
}

// find runs the detector on im, and on its tiles when req.Tiling calls for them, and
// returns the detections that pass the request's score and count limits, with boxes in
// im's pixels.
func (d *Detector) find(ctx context.Context, m *models.Model, im imageio.Image, req Request) ([]Detection, error) {
	h, w, c, err := m.ImageShape()
	if err != nil {
		return nil, err
	}
	if im, err = im.ToChannels(c); err != nil {
		return nil, err
	}
	tiles := Tiles(im.Width, im.Height, w, h, req.Tiling)
	regions := append([]Rect{{W: im.Width, H: im.Height}}, tiles...)
	size := h * w * c
	pix := make([]uint8, len(regions)*size)
	for i, r := range regions {
		part := im
		if i > 0 {
			part = im.Crop(r.X, r.Y, r.X+r.W, r.Y+r.H)
		}
		if err := d.Prep.Fit(part, h, w, c, pix[i*size:(i+1)*size]); err != nil {
			return nil, err
		}
	}
	raw, err := m.Detect(ctx, pix, len(regions))
	if err != nil {
		return nil, err
	}
	dets := []Detection{}
	for i, r := range regions {
		for _, rd := range raw[i] {
			if rd.Score < req.MinScore {
				continue
			}
			box := Scale(rd.Box, r.W, r.H)
			box.XMin, box.XMax = box.XMin+float32(r.X), box.XMax+float32(r.X)
			box.YMin, box.YMax = box.YMin+float32(r.Y), box.YMax+float32(r.Y)
			if i > 0 && cutOff(box, r, im.Width, im.Height) {
				continue
			}
			dets = append(dets, Detection{Box: box, Type: m.Label(rd.Class), TypeIndex: rd.Class, Score: rd.Score})
		}
	}
	if len(tiles) > 0 {
		dets = merge(dets)
	} else {
		sort.SliceStable(dets, func(i, j int) bool { return dets[i].Score > dets[j].Score })
	}
	return dets[:min(req.MaxDetections, len(dets))], nil
}

// classifyCrops classifies every detection's crop of the full-resolution image in one
// classifier run and stores the top-k categories in dets.
func (d *Detector) classifyCrops(ctx context.Context, m *models.Model, im imageio.Image, dets []Detection, topK int) error {
	h, w, c, err := m.ImageShape()
	if err != nil {
		return err
	}
	n, size := len(dets), h*w*c
	pix := make([]uint8, n*size)
	for i, det := range dets {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := d.Prep.Fit(Crop(im, det.Box, !d.KeepBackground), h, w, c, pix[i*size:(i+1)*size]); err != nil {
			return fmt.Errorf("crop %d: %w", i, err)
		}
	}
	probs, err := m.Classify(ctx, pix, n)
	if err != nil {
		return err
	}
	for i, p := range probs {
		dets[i].Classification = classify.TopK(p, topK, m)
	}
	return nil
}

// Scale returns a normalised box in the pixels of a width x height image, clamped to it.
func Scale(b models.NormBox, width, height int) Box {
	fw, fh := float32(width), float32(height)
	c := func(v, hi float32) float32 { return max(0, min(v, hi)) }
	return Box{XMin: c(b.XMin*fw, fw), YMin: c(b.YMin*fh, fh), XMax: c(b.XMax*fw, fw), YMax: c(b.YMax*fh, fh)}
}
