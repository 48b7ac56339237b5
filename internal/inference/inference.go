// Package inference is the core of Atelier's Open Inference Protocol (KServe V2)
// service: it names the V2 models (each Atelier model as its SavedModel signature
// defines it, plus an image model that takes JPEG or PNG bytes), describes them, checks
// every request against the model's signature and runs it through the model's engine,
// the same dynamic batcher that atelier.v1 calls use. It speaks Go types; server/
// converts the protobuf messages.
package inference

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/atelier-vision/atelier/internal/classify"
	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/prep"
	"github.com/atelier-vision/atelier/internal/tensor"
)

// ImageSuffix names a model's image variant: classifier_image takes encoded images.
const ImageSuffix = "_image"

// Platforms reported by ModelMetadata.
const (
	PlatformSavedModel = "tensorflow_savedmodel"
	PlatformImage      = "atelier_image"
)

// TensorMeta describes one input or output: its name, V2 datatype and shape (-1 for
// a dimension of any size).
type TensorMeta struct {
	Name     string
	Datatype string
	Shape    []int64
}

// Metadata describes a V2 model.
type Metadata struct {
	Name     string
	Versions []string
	Platform string
	Inputs   []TensorMeta
	Outputs  []TensorMeta
	// Properties are string facts about the model (role, labels, its other variant).
	Properties map[string]string
}

// Input is one input tensor of a request. Numeric tensors come as Raw, little-endian
// bytes of the flattened elements; BYTES tensors come as Elems, one per element.
type Input struct {
	Name     string
	Datatype string
	Shape    []int64
	Raw      []byte
	Elems    [][]byte
}

// Output is one output tensor: Raw holds little-endian numbers, or for BYTES each
// element behind its 4-byte little-endian length.
type Output struct {
	Name     string
	Datatype string
	Shape    []int64
	Raw      []byte
}

// Request is one inference request.
type Request struct {
	Model   string
	Version string
	Inputs  []Input
	// Outputs names the outputs wanted; empty means all of them.
	Outputs []string
}

// Response answers a Request; Outputs follow the order of Request.Outputs, or the
// model's metadata order when none were named.
type Response struct {
	Model   string
	Version string
	Outputs []Output
}

// Server answers V2 requests from the model repository.
type Server struct {
	Repo *models.Repository
	// Prep decodes and resizes the image models' inputs exactly as Classify does.
	Prep *prep.Preparer
}

// kind is what a V2 model name resolves to.
type kind int

const (
	kindTensor kind = iota
	kindImage
)

// target is a resolved V2 model: an Atelier model version and how it is exposed.
type target struct {
	kind     kind
	name     string
	model    *models.Model
	versions []*models.Model
}

// Names lists every V2 model: each Atelier model, and its image variant where its
// role has one and no Atelier model has the variant's name (resolve finds that model
// first, so the variant cannot be reached; listing it would list the name twice).
func (s *Server) Names() []string {
	var names []string
	for _, n := range s.Repo.Names() {
		names = append(names, n)
		if s.hasImageVariant(n) {
			names = append(names, n+ImageSuffix)
		}
	}
	return names
}

// hasImageVariant reports whether the V2 name name+ImageSuffix is model name's image
// model: its role has one and no Atelier model of that name shadows it.
func (s *Server) hasImageVariant(name string) bool {
	vs, err := s.Repo.Versions(name)
	if err != nil || !hasImageModel(vs[0].Role) {
		return false
	}
	_, err = s.Repo.Versions(name + ImageSuffix)
	return err != nil
}

func hasImageModel(r models.Role) bool {
	return r == models.RoleClassifier || r == models.RoleDetector
}

// resolve finds the model version a V2 name and version string ask for; a malformed
// version is refused whether or not the model exists.
func (s *Server) resolve(name, version string) (target, error) {
	if name == "" {
		return target{}, fmt.Errorf("%w: model name is required (models: %s)", errkind.Invalid, strings.Join(s.Names(), ", "))
	}
	var want int64
	if version != "" {
		v, err := strconv.ParseInt(version, 10, 64)
		if err != nil || v <= 0 {
			return target{}, fmt.Errorf("%w: model_version %q is not a positive integer", errkind.Invalid, version)
		}
		want = v
	}
	t := target{kind: kindTensor, name: name}
	vs, err := s.Repo.Versions(name)
	if err != nil {
		base, ok := strings.CutSuffix(name, ImageSuffix)
		if !ok {
			return target{}, fmt.Errorf("%w: no model named %q (models: %s)", models.ErrNotFound, name, strings.Join(s.Names(), ", "))
		}
		if vs, err = s.Repo.Versions(base); err != nil || !hasImageModel(vs[0].Role) {
			return target{}, fmt.Errorf("%w: no model named %q (models: %s)", models.ErrNotFound, name, strings.Join(s.Names(), ", "))
		}
		t.kind = kindImage
	}
	t.versions = vs
	t.model = vs[0]
	if want != 0 {
		t.model = nil
		for _, m := range vs {
			if m.Version == want {
				t.model = m
			}
		}
		if t.model == nil {
			return target{}, fmt.Errorf("%w: model %q has no version %d (loaded: %s)", models.ErrNotFound, name, want, versionList(vs))
		}
	}
	return t, nil
}

func versionList(vs []*models.Model) string {
	parts := make([]string, len(vs))
	for i, m := range vs {
		parts[i] = strconv.FormatInt(m.Version, 10)
	}
	return strings.Join(parts, ", ")
}

// Metadata describes a V2 model version ("" for the newest).
func (s *Server) Metadata(name, version string) (Metadata, error) {
	t, err := s.resolve(name, version)
	if err != nil {
		return Metadata{}, err
	}
	md := Metadata{Name: name, Properties: map[string]string{"role": t.model.Role.String()}}
	for i := range t.versions {
		md.Versions = append(md.Versions, strconv.FormatInt(t.versions[i].Version, 10))
	}
	if len(t.model.Labels) > 0 {
		md.Properties["labels"] = strings.Join(t.model.Labels, ",")
	}
	if t.kind == kindImage {
		md.Platform = PlatformImage
		md.Inputs, md.Outputs = imageIO(t.model)
		md.Properties["tensor_model"] = t.model.Name
		return md, nil
	}
	md.Platform = PlatformSavedModel
	sig, _ := t.model.Signature(models.ServingSignature)
	md.Inputs, md.Outputs = metas(sig.Inputs), metas(sig.Outputs)
	if s.hasImageVariant(t.model.Name) {
		md.Properties["image_model"] = t.model.Name + ImageSuffix
	}
	return md, nil
}

func metas(infos []tensor.Info) []TensorMeta {
	out := make([]TensorMeta, len(infos))
	for i, in := range infos {
		out[i] = TensorMeta{Name: in.Key, Datatype: Datatype(in.DType), Shape: in.Shape}
	}
	return out
}

// Infer validates req against the model's inputs and runs it.
func (s *Server) Infer(ctx context.Context, req Request) (Response, error) {
	t, err := s.resolve(req.Model, req.Version)
	if err != nil {
		return Response{}, err
	}
	// Hold the version while it runs, so a reload drains this call before it unloads
	// the version. Without a version asked for, hold the newest at this moment: the one
	// resolve saw may have left routing since, and asking for it by number would fail
	// a call that a version switch should not touch.
	spec := models.Spec{Name: t.model.Name}
	if req.Version != "" {
		spec.Version = t.model.Version
	}
	m, release, err := s.Repo.Acquire(spec, t.model.Role)
	if err != nil {
		return Response{}, err
	}
	defer release()
	var outs []Output
	if t.kind == kindImage {
		outs, err = s.inferImage(ctx, m, req)
	} else {
		outs, err = inferTensor(ctx, m, req)
	}
	if err != nil {
		return Response{}, err
	}
	return Response{Model: req.Model, Version: strconv.FormatInt(m.Version, 10), Outputs: outs}, nil
}

// classifier returns a classify core over the same repository and preparer, so the
// image model answers exactly what Classify answers.
func (s *Server) classifier() *classify.Classifier {
	return &classify.Classifier{Repo: s.Repo, Prep: s.Prep}
}
