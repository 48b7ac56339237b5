package server

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/models"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// ModelControl is the lifecycle core ModelService's status and admin RPCs, and the
// Open Inference Protocol's repository RPCs, call; *models.Manager in production.
type ModelControl interface {
	Status(names ...string) []models.ModelStatus
	// OnDisk lists every model's complete version folders, newest first, loaded or not.
	OnDisk() map[string][]int64
	StatusOf(name string) (models.ModelStatus, error)
	Reload(ctx context.Context, wait bool) error
	LoadModel(ctx context.Context, name string, version int64) (models.VersionStatus, error)
	UnloadModel(name string, version int64) error
	SetLabels(name string, labels map[string]int64) (map[string]int64, error)
}

// errNoControl answers the lifecycle RPCs of a server built without a ModelControl.
var errNoControl = toStatus(errkind.New(errkind.Unimplemented, "this server has no model lifecycle"))

// GetModelStatus reports the lifecycle state of every version of one or all models.
func (s *ModelServer) GetModelStatus(ctx context.Context, req *pb.GetModelStatusRequest) (*pb.GetModelStatusResponse, error) {
	if s.Control == nil {
		return nil, errNoControl
	}
	if req.GetName() == "" {
		return &pb.GetModelStatusResponse{Models: statusesToProto(s.Control.Status())}, nil
	}
	st, err := s.Control.StatusOf(req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.GetModelStatusResponse{Models: statusesToProto([]models.ModelStatus{st})}, nil
}

// ReloadRepository re-reads the config file and rescans the model folder.
func (s *ModelServer) ReloadRepository(ctx context.Context, req *pb.ReloadRepositoryRequest) (*pb.ReloadRepositoryResponse, error) {
	if s.Control == nil {
		return nil, errNoControl
	}
	if err := s.Control.Reload(ctx, req.GetWait()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.ReloadRepositoryResponse{Models: statusesToProto(s.Control.Status())}, nil
}

// LoadModel pins a version and answers once it is AVAILABLE or FAILED.
func (s *ModelServer) LoadModel(ctx context.Context, req *pb.LoadModelRequest) (*pb.LoadModelResponse, error) {
	if s.Control == nil {
		return nil, errNoControl
	}
	spec, err := versionSpec(req.GetModel())
	if err != nil {
		return nil, toStatus(err)
	}
	st, err := s.Control.LoadModel(ctx, spec.Name, spec.Version)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.LoadModelResponse{Version: versionToProto(st)}, nil
}

// UnloadModel evicts a version; its in-flight calls finish on it.
func (s *ModelServer) UnloadModel(ctx context.Context, req *pb.UnloadModelRequest) (*pb.UnloadModelResponse, error) {
	if s.Control == nil {
		return nil, errNoControl
	}
	spec, err := versionSpec(req.GetModel())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.Control.UnloadModel(spec.Name, spec.Version); err != nil {
		return nil, toStatus(err)
	}
	return &pb.UnloadModelResponse{}, nil
}

// SetVersionLabels points labels at available versions.
func (s *ModelServer) SetVersionLabels(ctx context.Context, req *pb.SetVersionLabelsRequest) (*pb.SetVersionLabelsResponse, error) {
	if s.Control == nil {
		return nil, errNoControl
	}
	if req.GetName() == "" {
		return nil, toStatus(errMissing("name"))
	}
	if len(req.GetVersionLabels()) == 0 {
		return nil, toStatus(fmt.Errorf("%w: version_labels is empty; give at least one label=version (version 0 removes the label)", errkind.Invalid))
	}
	labels, err := s.Control.SetLabels(req.GetName(), req.GetVersionLabels())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.SetVersionLabelsResponse{VersionLabels: labels}, nil
}

// versionSpec checks that a spec names a model and one version by number.
func versionSpec(ps *pb.ModelSpec) (models.Spec, error) {
	spec := specFromProto(ps)
	switch {
	case spec.Name == "":
		return spec, errMissing("model.name")
	case spec.Label != "":
		return spec, fmt.Errorf("%w: model.version_label is not accepted here; give model.version", errkind.Invalid)
	case spec.Version <= 0:
		return spec, fmt.Errorf("%w: model.version must be a version number >= 1, got %d", errkind.Invalid, spec.Version)
	}
	return spec, nil
}

func statusesToProto(sts []models.ModelStatus) []*pb.ModelStatus {
	out := make([]*pb.ModelStatus, len(sts))
	for i, st := range sts {
		ps := &pb.ModelStatus{Name: st.Name, Role: pb.ModelRole(st.Role), Policy: st.Policy.String(), VersionLabels: st.Labels}
		for _, v := range st.Versions {
			ps.Versions = append(ps.Versions, versionToProto(v))
		}
		out[i] = ps
	}
	return out
}

func versionToProto(v models.VersionStatus) *pb.VersionStatus {
	pv := &pb.VersionStatus{Version: v.Version, State: pb.VersionState(v.State), StateTime: ts(v.StateTime),
		LoadStartTime: ts(v.LoadStart), AvailableTime: ts(v.AvailableTime), Pinned: v.Pinned}
	if v.Err != nil {
		pv.Error = v.Err.Error()
	}
	return pv
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
