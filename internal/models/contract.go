package models

import (
	"context"
	"fmt"
	"strings"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/tensor"
)

// This file is the one home of the model contracts (docs/ARCHITECTURE.md): which
// signature keys make each role, and how each role is fed and its outputs checked.
// The request cores call the role's method (Classify, Detect, Generate) and never
// name a signature key themselves.

// Role is what a model does, read from its serving signature.
type Role int

// The roles, each with its signature contract.
const (
	RoleUnknown    Role = iota
	RoleClassifier      // images uint8 [b,H,W,C] -> probabilities float32 [b,classes]
	RoleDetector        // images -> detection_boxes, detection_scores, detection_classes, num_detections
	RoleGenerator       // z float32 [b,Z], labels int32 [b] -> images uint8 [b,S,S,C]
)

// String returns the role's lower-case name.
func (r Role) String() string {
	switch r {
	case RoleClassifier:
		return "classifier"
	case RoleDetector:
		return "detector"
	case RoleGenerator:
		return "generator"
	}
	return "unknown"
}

// ServingSignature is the signature every role's contract is read from.
const ServingSignature = "serving_default"

// The signature keys of the contracts.
const (
	keyImages        = "images"
	keyProbabilities = "probabilities"
	keyBoxes         = "detection_boxes"
	keyScores        = "detection_scores"
	keyClasses       = "detection_classes"
	keyNum           = "num_detections"
	keyLatent        = "z"
	keyLabels        = "labels"
)

// contracts lists each role's required input and output keys, in the order roleOf
// tries them.
var contracts = []struct {
	role            Role
	inputs, outputs []string
}{
	{RoleClassifier, []string{keyImages}, []string{keyProbabilities}},
	{RoleDetector, []string{keyImages}, []string{keyBoxes, keyScores, keyClasses, keyNum}},
	{RoleGenerator, []string{keyLatent, keyLabels}, []string{keyImages}},
}

// roleOf reads the role from the serving signature's input and output keys.
func roleOf(sigs []tensor.Signature) Role {
	for _, s := range sigs {
		if s.Name != ServingSignature {
			continue
		}
		for _, c := range contracts {
			if hasAll(s.Input, c.inputs) && hasAll(s.Output, c.outputs) {
				return c.role
			}
		}
	}
	return RoleUnknown
}

func hasAll(get func(string) (tensor.Info, bool), keys []string) bool {
	for _, k := range keys {
		if _, ok := get(k); !ok {
			return false
		}
	}
	return true
}

// contractSummary describes every role's keys for error messages.
func contractSummary() string {
	parts := make([]string, len(contracts))
	for i, c := range contracts {
		parts[i] = fmt.Sprintf("%s: %s -> %s", c.role, strings.Join(c.inputs, ", "), strings.Join(c.outputs, ", "))
	}
	return strings.Join(parts, "; ")
}

// ImageShape returns the height, width and channels of the `images` input of a
// classifier or detector, the fixed size every image is resized to.
func (m *Model) ImageShape() (h, w, c int, err error) {
	in, ok := m.Input(keyImages)
	if !ok {
		return 0, 0, 0, fmt.Errorf("%w: %s has no `images` input", ErrWrongRole, m.Spec())
	}
	if len(in.Shape) != 4 || in.Shape[1] <= 0 || in.Shape[2] <= 0 || (in.Shape[3] != 1 && in.Shape[3] != 3) {
		return 0, 0, 0, fmt.Errorf("%w: %s input `images` has shape %v, want [batch, H, W, 1 or 3] with fixed H and W",
			ErrWrongRole, m.Spec(), in.Shape)
	}
	return int(in.Shape[1]), int(in.Shape[2]), int(in.Shape[3]), nil
}

// LatentSize returns Z, the length of a generator's latent vectors (its `z` input
// [batch, Z]).
func (m *Model) LatentSize() (int, error) {
	in, _ := m.Input(keyLatent)
	if len(in.Shape) != 2 || in.Shape[1] <= 0 {
		return 0, fmt.Errorf("%w: %s input `z` has shape %v, want [batch, Z] with a fixed Z",
			ErrWrongRole, m.Spec(), in.Shape)
	}
	return int(in.Shape[1]), nil
}

// images wraps n prepared images (uint8, n*h*w*c bytes, h, w and c from ImageShape)
// as the `images` input.
func (m *Model) images(pix []uint8, n int) (map[string]*tensor.Tensor, error) {
	h, w, c, err := m.ImageShape()
	if err != nil {
		return nil, err
	}
	in, err := tensor.NewUint8([]int64{int64(n), int64(h), int64(w), int64(c)}, pix)
	if err != nil {
		return nil, err
	}
	return map[string]*tensor.Tensor{keyImages: in}, nil
}

// Classify runs a classifier on n prepared images and returns one probability row
// per image.
func (m *Model) Classify(ctx context.Context, pix []uint8, n int) ([][]float32, error) {
	in, err := m.images(pix, n)
	if err != nil {
		return nil, err
	}
	out, err := m.Engine.Run(ctx, ServingSignature, in, []string{keyProbabilities})
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", m.Spec(), err)
	}
	p := out[keyProbabilities]
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

// RawDetection is one row of a detector's outputs: a box normalised to [0, 1], a
// score and a class index.
type RawDetection struct {
	Box   NormBox
	Score float32
	Class int
}

// NormBox is a box in normalised coordinates (fractions of the image's size).
type NormBox struct {
	YMin, XMin, YMax, XMax float32
}

// Detect runs a detector on n prepared images and returns each image's valid
// detections, in the model's order (best first).
func (m *Model) Detect(ctx context.Context, pix []uint8, n int) ([][]RawDetection, error) {
	in, err := m.images(pix, n)
	if err != nil {
		return nil, err
	}
	out, err := m.Engine.Run(ctx, ServingSignature, in, []string{keyBoxes, keyScores, keyClasses, keyNum})
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", m.Spec(), err)
	}
	boxes, scores, classes, num := out[keyBoxes], out[keyScores], out[keyClasses], out[keyNum]
	bad := func(t *tensor.Tensor, rank int) bool {
		return t == nil || t.Float32 == nil || len(t.Shape) != rank || t.Shape[0] != int64(n)
	}
	if bad(boxes, 3) || bad(scores, 2) || bad(classes, 2) || bad(num, 1) || boxes.Shape[2] != 4 ||
		scores.Shape[1] != boxes.Shape[1] || classes.Shape[1] != boxes.Shape[1] {
		return nil, fmt.Errorf("run %s: outputs are not float32 %s [%d, K, 4], %s and %s [%d, K], %s [%d]",
			m.Spec(), keyBoxes, n, keyScores, keyClasses, n, keyNum, n)
	}
	k := int(boxes.Shape[1])
	res := make([][]RawDetection, n)
	for i := range res {
		valid := min(max(int(num.Float32[i]), 0), k)
		res[i] = make([]RawDetection, valid)
		for j := range valid {
			b := boxes.Float32[(i*k+j)*4:]
			res[i][j] = RawDetection{
				Box:   NormBox{YMin: b[0], XMin: b[1], YMax: b[2], XMax: b[3]},
				Score: scores.Float32[i*k+j],
				Class: int(classes.Float32[i*k+j]),
			}
		}
	}
	return res, nil
}

// CheckValues refuses input values the model's contract bounds and only its session
// run would otherwise find: a generator's `labels` index its label table, and one
// past it is an error TensorFlow reports for the whole batch the call shares.
func (m *Model) CheckValues(feed map[string]*tensor.Tensor) error {
	if m.Role != RoleGenerator {
		return nil
	}
	t := feed[keyLabels]
	if t == nil || t.DType != tensor.Int32 {
		return nil // the signature's own checks speak for a missing or mistyped input
	}
	for i, v := range t.Int32 {
		if v < 0 || int(v) >= len(m.Labels) {
			return fmt.Errorf("%w: input %q: value %d at [%d] is not a category index of %s (0 to %d)",
				errkind.Invalid, keyLabels, v, i, m.Spec(), len(m.Labels)-1)
		}
	}
	return nil
}

// Generate runs a generator on latent vectors z (n of LatentSize floats each) with
// one class label per vector, and returns the n images it draws.
func (m *Model) Generate(ctx context.Context, z []float32, labels []int32) ([]imageio.Image, error) {
	n := len(labels)
	size, err := m.LatentSize()
	if err != nil {
		return nil, err
	}
	zt, err := tensor.NewFloat32([]int64{int64(n), int64(size)}, z)
	if err != nil {
		return nil, err
	}
	lt, err := tensor.NewInt32([]int64{int64(n)}, labels)
	if err != nil {
		return nil, err
	}
	out, err := m.Engine.Run(ctx, ServingSignature, map[string]*tensor.Tensor{keyLatent: zt, keyLabels: lt}, []string{keyImages})
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", m.Spec(), err)
	}
	im := out[keyImages]
	if im == nil || im.Uint8 == nil || len(im.Shape) != 4 || im.Shape[0] != int64(n) || (im.Shape[3] != 1 && im.Shape[3] != 3) {
		return nil, fmt.Errorf("run %s: `images` output is not uint8 [%d, S, S, 1 or 3]", m.Spec(), n)
	}
	h, w, c := int(im.Shape[1]), int(im.Shape[2]), int(im.Shape[3])
	images := make([]imageio.Image, n)
	for i := range images {
		images[i] = imageio.Image{Width: w, Height: h, Channels: c, Pix: im.Uint8[i*h*w*c : (i+1)*h*w*c]}
	}
	return images, nil
}
