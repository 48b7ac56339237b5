package server

import (
	"context"
	"testing"

	"github.com/atelier-vision/atelier/internal/models"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// unloadingRepo is a repository whose model "gone" has its last version unloaded
// between Names and Versions, as the lifecycle may do during any ListModels.
type unloadingRepo struct{ *models.Repository }

func (r unloadingRepo) Names() []string { return append(r.Repository.Names(), "gone") }

// TestListModelsSkipsAModelUnloadedMeanwhile: a model that leaves the repository
// while ListModels runs is left out of the list; the call does not fail NotFound.
func TestListModelsSkipsAModelUnloadedMeanwhile(t *testing.T) {
	core := fakeInferenceCore(t)
	s := &ModelServer{Repo: unloadingRepo{core.Repo}}
	resp, err := s.ListModels(context.Background(), &pb.ListModelsRequest{})
	if err != nil {
		t.Fatalf("got %v, want the models still loaded", err)
	}
	if len(resp.GetModels()) != 1 || resp.GetModels()[0].GetName() != "classifier" || len(resp.GetModels()[0].GetVersions()) != 2 {
		t.Fatalf("got %v, want classifier with its 2 versions only", resp.GetModels())
	}
}
