package models

import (
	"context"
	"errors"
	"fmt"

	"github.com/atelier-vision/atelier/internal/tf"
)

// ErrNotFound marks a model name or version the repository does not hold.
var ErrNotFound = errors.New("model not found")

// ErrWrongRole marks a model asked to do what its signature cannot (say, a detector
// asked to classify).
var ErrWrongRole = errors.New("model has the wrong role")

// Role is what a model does, read from its serving signature.
type Role int

// The roles, each with its signature contract (see docs/ARCHITECTURE.md).
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

// Spec names a model and a version; version 0 means the newest loaded one.
type Spec struct {
	Name    string
	Version int64
}

// String returns name:version, or name@latest for version 0.
func (s Spec) String() string {
	if s.Version == 0 {
		return s.Name + "@latest"
	}
	return fmt.Sprintf("%s:%d", s.Name, s.Version)
}

// Engine runs a loaded model: a TensorFlow session in production, a fake in unit tests.
type Engine interface {
	Run(ctx context.Context, signature string, inputs map[string]*tf.Tensor, outputs []string) (map[string]*tf.Tensor, error)
	Close() error
}

// Model is one loaded version of a model.
type Model struct {
	Name       string
	Version    int64
	Role       Role
	Dir        string
	Labels     []string
	Signatures []tf.Signature
	Engine     Engine
}

// Spec returns the model's name and version.
func (m *Model) Spec() Spec { return Spec{Name: m.Name, Version: m.Version} }

// Signature returns the named signature.
func (m *Model) Signature(name string) (tf.Signature, bool) {
	for _, s := range m.Signatures {
		if s.Name == name {
			return s, true
		}
	}
	return tf.Signature{}, false
}

// Input returns the serving signature's input with the given key.
func (m *Model) Input(key string) (tf.TensorInfo, bool) {
	return m.tensor(key, true)
}

// Output returns the serving signature's output with the given key.
func (m *Model) Output(key string) (tf.TensorInfo, bool) {
	return m.tensor(key, false)
}

func (m *Model) tensor(key string, input bool) (tf.TensorInfo, bool) {
	sig, ok := m.Signature(ServingSignature)
	if !ok {
		return tf.TensorInfo{}, false
	}
	list := sig.Outputs
	if input {
		list = sig.Inputs
	}
	for _, t := range list {
		if t.Key == key {
			return t, true
		}
	}
	return tf.TensorInfo{}, false
}

// ImageShape returns the height, width and channels of the `images` input, the fixed
// size every image is resized to before it reaches the model.
func (m *Model) ImageShape() (h, w, c int, err error) {
	in, ok := m.Input("images")
	if !ok {
		return 0, 0, 0, fmt.Errorf("%w: %s has no `images` input", ErrWrongRole, m.Spec())
	}
	if len(in.Shape) != 4 || in.Shape[1] <= 0 || in.Shape[2] <= 0 || (in.Shape[3] != 1 && in.Shape[3] != 3) {
		return 0, 0, 0, fmt.Errorf("%w: %s input `images` has shape %v, want [batch, H, W, 1 or 3] with fixed H and W",
			ErrWrongRole, m.Spec(), in.Shape)
	}
	return int(in.Shape[1]), int(in.Shape[2]), int(in.Shape[3]), nil
}

// roleOf reads the role from the serving signature's input and output keys.
func roleOf(sigs []tf.Signature) Role {
	for _, s := range sigs {
		if s.Name != ServingSignature {
			continue
		}
		has := func(list []tf.TensorInfo, keys ...string) bool {
			for _, k := range keys {
				found := false
				for _, t := range list {
					found = found || t.Key == k
				}
				if !found {
					return false
				}
			}
			return true
		}
		switch {
		case has(s.Inputs, "images") && has(s.Outputs, "probabilities"):
			return RoleClassifier
		case has(s.Inputs, "images") && has(s.Outputs, "detection_boxes", "detection_scores", "detection_classes", "num_detections"):
			return RoleDetector
		case has(s.Inputs, "z", "labels") && has(s.Outputs, "images"):
			return RoleGenerator
		}
	}
	return RoleUnknown
}
