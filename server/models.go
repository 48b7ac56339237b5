package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/atelier-vision/atelier/internal/models"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// ModelRepository is the routing table ModelService describes; *models.Repository in
// production, an interface so that a test can unload a model between two of its calls.
type ModelRepository interface {
	Names() []string
	Versions(name string) ([]*models.Model, error)
	Labels(name string) map[string]int64
	Get(spec models.Spec, role models.Role) (*models.Model, error)
}

// ModelServer implements atelier.v1.ModelService.
type ModelServer struct {
	pb.UnsafeModelServiceServer
	Repo ModelRepository
	// Control runs the status and admin RPCs (model_admin.go).
	Control ModelControl
	Log     *slog.Logger
}

// ListModels describes every loaded model.
func (s *ModelServer) ListModels(ctx context.Context, _ *pb.ListModelsRequest) (*pb.ListModelsResponse, error) {
	resp := &pb.ListModelsResponse{}
	for _, name := range s.Repo.Names() {
		vs, err := s.Repo.Versions(name)
		if errors.Is(err, models.ErrNotFound) {
			continue // its last version was unloaded since Names: it is no longer listed
		}
		if err != nil {
			return nil, toStatus(err)
		}
		resp.Models = append(resp.Models, modelInfo(name, vs, s.Repo.Labels(name)))
	}
	return resp, nil
}

// GetModel describes one model, or one version of it.
func (s *ModelServer) GetModel(ctx context.Context, req *pb.GetModelRequest) (*pb.GetModelResponse, error) {
	spec := specFromProto(req.GetModel())
	if spec.Name == "" {
		return nil, toStatus(errMissing("model.name"))
	}
	if err := spec.Check("model"); err != nil {
		return nil, toStatus(err)
	}
	vs, err := s.Repo.Versions(spec.Name)
	if err != nil {
		return nil, toStatus(err)
	}
	if spec.Version != 0 || spec.Label != "" {
		m, err := s.Repo.Get(spec, vs[0].Role)
		if err != nil {
			return nil, toStatus(err)
		}
		vs = []*models.Model{m}
	}
	return &pb.GetModelResponse{Model: modelInfo(spec.Name, vs, s.Repo.Labels(spec.Name))}, nil
}

func modelInfo(name string, vs []*models.Model, labels map[string]int64) *pb.ModelInfo {
	info := &pb.ModelInfo{Name: name, Role: pb.ModelRole(vs[0].Role), VersionLabels: labels}
	for _, m := range vs {
		v := &pb.ModelVersion{Version: m.Version, Labels: m.Labels, Precision: string(m.Precision), Bf16MinBatch: int32(m.BF16MinBatch)}
		for _, sig := range m.Signatures {
			ps := &pb.Signature{Name: sig.Name}
			for _, t := range sig.Inputs {
				ps.Inputs = append(ps.Inputs, &pb.TensorSpec{Name: t.Key, Dtype: string(t.DType), Shape: t.Shape})
			}
			for _, t := range sig.Outputs {
				ps.Outputs = append(ps.Outputs, &pb.TensorSpec{Name: t.Key, Dtype: string(t.DType), Shape: t.Shape})
			}
			v.Signatures = append(v.Signatures, ps)
		}
		info.Versions = append(info.Versions, v)
	}
	return info
}
