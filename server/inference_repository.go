package server

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/models"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

// The Open Inference Protocol's repository RPCs (Triton's model repository
// extension) on the model lifecycle: the index is the lifecycle's status plus the
// version folders it does not hold, load pins a version as ModelService/LoadModel
// does, unload evicts versions as ModelService/UnloadModel does. They are admin RPCs
// (auth.DefaultRules, adminMethods).

const whyNoLifecycle = "this server has no model lifecycle"

// Triton's model states, as its RepositoryIndex spells them.
const (
	tritonReady       = "READY"
	tritonLoading     = "LOADING"
	tritonUnloading   = "UNLOADING"
	tritonUnavailable = "UNAVAILABLE"
)

// The repository parameters Atelier reads: version (Atelier's, int64 or a decimal
// string) picks one version; unload_dependents (tritonclient always sends it) is
// accepted, as no Atelier model depends on another.
const (
	paramVersion          = "version"
	paramUnloadDependents = "unload_dependents"
)

// RepositoryIndex lists every model version in the lifecycle or on disk with its
// state in Triton's words; ready lists only the READY ones.
func (s *InferenceServer) RepositoryIndex(ctx context.Context, req *oip.RepositoryIndexRequest) (*oip.RepositoryIndexResponse, error) {
	if s.Control == nil {
		return nil, unimplemented("RepositoryIndex", whyNoLifecycle)
	}
	return &oip.RepositoryIndexResponse{Models: repositoryIndex(s.Control.Status(), s.Control.OnDisk(), req.GetReady())}, nil
}

// RepositoryModelLoad pins a version (the newest on disk unless the version
// parameter names one) and answers once it is READY; a version that fails to load
// is FailedPrecondition with the reason.
func (s *InferenceServer) RepositoryModelLoad(ctx context.Context, req *oip.RepositoryModelLoadRequest) (*oip.RepositoryModelLoadResponse, error) {
	if s.Control == nil {
		return nil, unimplemented("RepositoryModelLoad", whyNoLifecycle)
	}
	version, err := repositoryRequest(req.GetModelName(), req.GetParameters(), false)
	if err != nil {
		return nil, toStatus(err)
	}
	name := req.GetModelName()
	if version == 0 {
		onDisk := s.Control.OnDisk()
		vs := onDisk[name]
		if len(vs) == 0 {
			return nil, toStatus(fmt.Errorf("%w: no version folder of model %q in the repository (models on disk: %s)",
				models.ErrNotFound, name, modelNames(onDisk)))
		}
		version = vs[0]
	}
	st, err := s.Control.LoadModel(ctx, name, version)
	if err != nil {
		return nil, toStatus(err)
	}
	if st.State == models.StateFailed {
		return nil, toStatus(fmt.Errorf("%w: version %d of %q failed to load: %v", errkind.FailedPrecondition, version, name, st.Err))
	}
	return &oip.RepositoryModelLoadResponse{}, nil
}

// RepositoryModelUnload evicts one version (the version parameter) or every
// available version of a model; their in-flight calls finish first. A model with
// nothing loaded is already unloaded; a labelled version is FailedPrecondition and
// nothing is evicted.
func (s *InferenceServer) RepositoryModelUnload(ctx context.Context, req *oip.RepositoryModelUnloadRequest) (*oip.RepositoryModelUnloadResponse, error) {
	if s.Control == nil {
		return nil, unimplemented("RepositoryModelUnload", whyNoLifecycle)
	}
	name := req.GetModelName()
	version, err := repositoryRequest(name, req.GetParameters(), true)
	if err != nil {
		return nil, toStatus(err)
	}
	if version != 0 {
		if err := s.Control.UnloadModel(name, version); err != nil {
			return nil, toStatus(err)
		}
		return &oip.RepositoryModelUnloadResponse{}, nil
	}
	sts, onDisk := s.Control.Status(name), s.Control.OnDisk()
	if len(sts) == 0 {
		if len(onDisk[name]) > 0 {
			return &oip.RepositoryModelUnloadResponse{}, nil
		}
		return nil, toStatus(fmt.Errorf("%w: no model named %q in the repository (models on disk: %s)",
			models.ErrNotFound, name, modelNames(onDisk)))
	}
	available, err := evictable(sts[0])
	if err != nil {
		return nil, toStatus(err)
	}
	for _, v := range available {
		if err := s.Control.UnloadModel(name, v); err != nil {
			return nil, toStatus(err)
		}
	}
	return &oip.RepositoryModelUnloadResponse{}, nil
}

// evictable returns a model's available versions, or ErrLabelled when a label names
// one of them.
func evictable(st models.ModelStatus) ([]int64, error) {
	var out []int64
	for _, v := range st.Versions {
		if v.State == models.StateAvailable {
			out = append(out, v.Version)
		}
	}
	labels := make([]string, 0, len(st.Labels))
	for l := range st.Labels {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, l := range labels {
		for _, v := range out {
			if st.Labels[l] == v {
				return nil, fmt.Errorf("%w: label %q names version %d of %q; move or remove it first (ModelService/SetVersionLabels)",
					models.ErrLabelled, l, v, st.Name)
			}
		}
	}
	return out, nil
}

// repositoryRequest checks a load or unload request and returns the version its
// parameters name (0: none). Triton's config and file: parameters are refused, as
// Atelier has no Triton model configuration and loads only from --model-dir.
func repositoryRequest(name string, params map[string]*oip.ModelRepositoryParameter, unload bool) (int64, error) {
	if name == "" {
		return 0, errMissing("model_name")
	}
	var version int64
	for key, p := range params {
		switch {
		case key == paramVersion:
			v, err := versionParam(p)
			if err != nil {
				return 0, err
			}
			version = v
		case key == paramUnloadDependents && unload:
			if _, ok := p.GetParameterChoice().(*oip.ModelRepositoryParameter_BoolParam); !ok {
				return 0, fmt.Errorf("%w: parameter %q must be a bool", errkind.Invalid, key)
			}
		case key == "config":
			return 0, fmt.Errorf("%w: parameter \"config\" is not supported: Atelier has no Triton model configuration (the version policy is in --model-config)", errkind.Invalid)
		case strings.HasPrefix(key, "file:"):
			return 0, fmt.Errorf("%w: parameter %q is not supported: Atelier loads models only from --model-dir", errkind.Invalid, key)
		default:
			known := paramVersion
			if unload {
				known += ", " + paramUnloadDependents
			}
			return 0, fmt.Errorf("%w: unknown parameter %q (known: %s)", errkind.Invalid, key, known)
		}
	}
	return version, nil
}

// versionParam reads the version parameter: an int64, or a string of digits.
func versionParam(p *oip.ModelRepositoryParameter) (int64, error) {
	var v int64
	switch c := p.GetParameterChoice().(type) {
	case *oip.ModelRepositoryParameter_Int64Param:
		v = c.Int64Param
	case *oip.ModelRepositoryParameter_StringParam:
		n, err := strconv.ParseInt(c.StringParam, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: parameter %q must be a version number, got %q", errkind.Invalid, paramVersion, c.StringParam)
		}
		v = n
	default:
		return 0, fmt.Errorf("%w: parameter %q must be an int64 or a string of digits", errkind.Invalid, paramVersion)
	}
	if v <= 0 {
		return 0, fmt.Errorf("%w: parameter %q must be a version number >= 1, got %d", errkind.Invalid, paramVersion, v)
	}
	return v, nil
}

// repositoryIndex merges the lifecycle's status with the version folders on disk,
// by name, newest version first.
func repositoryIndex(sts []models.ModelStatus, onDisk map[string][]int64, readyOnly bool) []*oip.RepositoryIndexResponse_ModelIndex {
	type key struct {
		name string
		v    int64
	}
	entries := map[key]*oip.RepositoryIndexResponse_ModelIndex{}
	for name, vs := range onDisk {
		for _, v := range vs {
			entries[key{name, v}] = &oip.RepositoryIndexResponse_ModelIndex{Name: name, Version: strconv.FormatInt(v, 10),
				State: tritonUnavailable, Reason: "not loaded"}
		}
	}
	for _, st := range sts {
		for _, v := range st.Versions {
			state, reason := tritonState(v)
			entries[key{st.Name, v.Version}] = &oip.RepositoryIndexResponse_ModelIndex{Name: st.Name,
				Version: strconv.FormatInt(v.Version, 10), State: state, Reason: reason}
		}
	}
	keys := make([]key, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].name != keys[j].name {
			return keys[i].name < keys[j].name
		}
		return keys[i].v > keys[j].v
	})
	var out []*oip.RepositoryIndexResponse_ModelIndex
	for _, k := range keys {
		if e := entries[k]; !readyOnly || e.State == tritonReady {
			out = append(out, e)
		}
	}
	return out
}

// tritonState names a version's lifecycle state as Triton does; the reason keeps
// what Triton's names lose (warming up, the load error).
func tritonState(v models.VersionStatus) (state, reason string) {
	switch v.State {
	case models.StateAvailable:
		return tritonReady, ""
	case models.StateLoading:
		return tritonLoading, ""
	case models.StateWarming:
		return tritonLoading, "warming up"
	case models.StateUnloading:
		return tritonUnloading, ""
	case models.StateFailed:
		reason = "failed to load"
		if v.Err != nil {
			reason += ": " + v.Err.Error()
		}
		return tritonUnavailable, reason
	}
	return tritonUnavailable, "not loaded"
}

// modelNames lists the models on disk for an error message.
func modelNames(onDisk map[string][]int64) string {
	names := make([]string, 0, len(onDisk))
	for n := range onDisk {
		names = append(names, n)
	}
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
