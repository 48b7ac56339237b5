package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/generate"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// Generator is the core that GenerateService calls; *generate.Generator in production.
type Generator interface {
	Generate(ctx context.Context, req generate.Request) (generate.Result, error)
	Interpolate(ctx context.Context, req generate.InterpolateRequest, send func(generate.Step) error) error
}

// GenerateServer implements atelier.v1.GenerateService.
type GenerateServer struct {
	pb.UnsafeGenerateServiceServer
	Core Generator
	Log  *slog.Logger
}

// Generate draws designs of one category.
func (s *GenerateServer) Generate(ctx context.Context, req *pb.GenerateRequest) (*pb.GenerateResponse, error) {
	res, err := s.Core.Generate(ctx, generate.Request{
		Model:    specFromProto(req.GetModel()),
		Category: req.GetCategory(),
		Count:    int(req.GetCount()),
		Seed:     req.GetSeed(),
		Latents:  latentsFromProto(req.GetLatents()),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &pb.GenerateResponse{Model: specToProto(res.Model), Images: make([]*pb.GeneratedImage, len(res.Designs))}
	for i, d := range res.Designs {
		resp.Images[i] = designToProto(d)
	}
	return resp, nil
}

// Interpolate streams the designs on the way from one latent point to another, each
// as soon as it is drawn.
func (s *GenerateServer) Interpolate(req *pb.InterpolateRequest, stream pb.GenerateService_InterpolateServer) error {
	ctx := stream.Context()
	ireq, err := interpolateRequest(req)
	if err != nil {
		return toStatus(err)
	}
	err = s.Core.Interpolate(ctx, ireq, func(st generate.Step) error {
		return stream.Send(&pb.InterpolateResponse{Step: uint32(st.Index), T: st.T, Image: designToProto(st.Design)})
	})
	return toStatus(err)
}

// interpolateRequest converts the protobuf request; both ends must be set.
func interpolateRequest(req *pb.InterpolateRequest) (generate.InterpolateRequest, error) {
	out := generate.InterpolateRequest{
		Model:    specFromProto(req.GetModel()),
		Category: req.GetCategory(),
		Steps:    int(req.GetSteps()),
	}
	var err error
	if out.Start, err = pointFromProto(req.GetStart(), "start"); err != nil {
		return out, err
	}
	out.End, err = pointFromProto(req.GetEnd(), "end")
	return out, err
}

func pointFromProto(p *pb.LatentPoint, field string) (generate.Point, error) {
	switch v := p.GetPoint().(type) {
	case *pb.LatentPoint_Seed:
		return generate.Point{Seed: v.Seed}, nil
	case *pb.LatentPoint_Latent:
		return generate.Point{Latent: append([]float32{}, v.Latent.GetValues()...)}, nil
	}
	return generate.Point{}, fmt.Errorf("%w: %s is required: set %s.seed or %s.latent", errkind.Invalid, field, field, field)
}

func latentsFromProto(ls []*pb.Latent) [][]float32 {
	if len(ls) == 0 {
		return nil
	}
	out := make([][]float32, len(ls))
	for i, l := range ls {
		out[i] = l.GetValues()
	}
	return out
}

func designToProto(d generate.Design) *pb.GeneratedImage {
	img := &pb.GeneratedImage{Png: d.PNG, Category: d.Category, Latent: &pb.Latent{Values: d.Latent}}
	if d.Seeded {
		img.Seed = d.Seed
	}
	return img
}
