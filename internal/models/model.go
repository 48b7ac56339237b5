package models

import (
	"fmt"
	"sync"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/precision"
	"github.com/atelier-vision/atelier/internal/tensor"
)

// ErrNotFound marks a model name or version the repository does not hold.
var ErrNotFound = errkind.New(errkind.NotFound, "model not found")

// ErrWrongRole marks a model asked to do what its signature cannot (say, a detector
// asked to classify).
var ErrWrongRole = errkind.New(errkind.FailedPrecondition, "model has the wrong role")

// ErrInvalidSpec marks a model spec that no version can match: one that asks for a
// version two ways at once, or for a negative version.
var ErrInvalidSpec = errkind.New(errkind.Invalid, "invalid model spec")

// Spec names a model and a version; version 0 means the newest available one, and a
// Label means the version the label names.
type Spec struct {
	Name    string
	Version int64
	Label   string
}

// String returns name:version, name@label, or name@latest for version 0.
func (s Spec) String() string {
	if s.Label != "" {
		return s.Name + "@" + s.Label
	}
	if s.Version == 0 {
		return s.Name + "@latest"
	}
	return fmt.Sprintf("%s:%d", s.Name, s.Version)
}

// Check refuses a spec that is wrong whatever the repository holds: a negative
// version, or a version asked for both by number and by label. field is the spec's
// name in the request ("model", "classifier"), for the message. The cores call it
// when they validate a request, so that a stream's config is refused at once rather
// than failing every frame alike.
func (s Spec) Check(field string) error {
	switch {
	case s.Version < 0:
		return fmt.Errorf("%w: %s.version %d is negative (0 means the newest version)", ErrInvalidSpec, field, s.Version)
	case s.Version != 0 && s.Label != "":
		return fmt.Errorf("%w: set %s.version or %s.version_label, not both", ErrInvalidSpec, field, field)
	}
	return nil
}

// Model is one loaded version of a model.
type Model struct {
	Name       string
	Version    int64
	Role       Role
	Dir        string
	Labels     []string
	Signatures []tensor.Signature
	Engine     tensor.Engine
	// Precision is what the engine runs in (fp32 or bf16; "" when unknown).
	Precision precision.Precision
	// BF16MinBatch, when above 1, is the batch size from which a bf16 model runs in
	// bf16; smaller batches run in fp32 (see Loaded).
	BF16MinBatch int
	// inflight counts the calls that hold the version (Repository.Acquire); a retired
	// version is closed only once it is zero.
	inflight sync.WaitGroup
}

// NewModel assembles a loaded model from its engine, signatures and labels, working
// out its role from the serving signature; a model that matches no role is an error.
// Open uses it for every version it loads; tests use it to build models in memory.
func NewModel(spec Spec, dir string, engine tensor.Engine, sigs []tensor.Signature, labels []string) (*Model, error) {
	m := &Model{Name: spec.Name, Version: spec.Version, Dir: dir, Signatures: sigs, Engine: engine, Labels: labels}
	if m.Role = roleOf(sigs); m.Role == RoleUnknown {
		return nil, fmt.Errorf("%s: %s signature matches no role (%s)", spec, ServingSignature, contractSummary())
	}
	return m, nil
}

// Spec returns the model's name and version.
func (m *Model) Spec() Spec { return Spec{Name: m.Name, Version: m.Version} }

// Signature returns the named signature.
func (m *Model) Signature(name string) (tensor.Signature, bool) {
	for _, s := range m.Signatures {
		if s.Name == name {
			return s, true
		}
	}
	return tensor.Signature{}, false
}

// Input returns the serving signature's input with the given key.
func (m *Model) Input(key string) (tensor.Info, bool) {
	sig, _ := m.Signature(ServingSignature)
	return sig.Input(key)
}

// Output returns the serving signature's output with the given key.
func (m *Model) Output(key string) (tensor.Info, bool) {
	sig, _ := m.Signature(ServingSignature)
	return sig.Output(key)
}

// Label returns class i's label, or class_i when the model has none for it.
func (m *Model) Label(i int) string {
	if i >= 0 && i < len(m.Labels) {
		return m.Labels[i]
	}
	return fmt.Sprintf("class_%d", i)
}
