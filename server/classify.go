package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/atelier-vision/atelier/internal/classify"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/stream"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// Classifier is the core that ClassifyService calls; *classify.Classifier in production.
type Classifier interface {
	Classify(ctx context.Context, req classify.Request) (classify.Result, error)
	// Labels names the classifier spec asks for now, with its labels, for the check of
	// a stream's alert rules at its start.
	Labels(spec models.Spec) (map[string][]string, error)
}

// ClassifyServer implements atelier.v1.ClassifyService.
type ClassifyServer struct {
	pb.UnsafeClassifyServiceServer
	Core Classifier
	// Hub receives the alerts of every ClassifyStream (classify_stream.go).
	Hub *stream.Hub
	Log *slog.Logger
}

// Classify answers one batch of images.
func (s *ClassifyServer) Classify(ctx context.Context, req *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
	creq, err := classifyRequest(req)
	if err != nil {
		return nil, toStatus(err)
	}
	res, err := s.Core.Classify(ctx, creq)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &pb.ClassifyResponse{Model: specToProto(res.Model)}
	for _, preds := range res.Predictions {
		resp.Classifications = append(resp.Classifications, classificationToProto(preds))
	}
	return resp, nil
}

// classifyRequest converts the protobuf request, filling in the documented defaults;
// the core checks the ranges.
func classifyRequest(req *pb.ClassifyRequest) (classify.Request, error) {
	out := classify.Request{Model: specFromProto(req.GetModel()), TopK: classify.DefaultTopK,
		Images: make([]imageio.Source, 0, len(req.GetImages()))}
	if req.TopK != nil {
		out.TopK = int(req.GetTopK())
	}
	for i, img := range req.GetImages() {
		src, err := sourceFromProto(img)
		if err != nil {
			return out, fmt.Errorf("image %d: %w", i, err)
		}
		out.Images = append(out.Images, src)
	}
	return out, nil
}

func sourceFromProto(img *pb.Image) (imageio.Source, error) {
	switch d := img.GetData().(type) {
	case *pb.Image_Encoded:
		return imageio.Source{Encoded: d.Encoded}, nil
	case *pb.Image_Raw:
		return imageio.Source{Frame: &imageio.Frame{RGB: d.Raw.GetRgb(), Width: int(d.Raw.GetWidth()), Height: int(d.Raw.GetHeight())}}, nil
	}
	return imageio.Source{}, fmt.Errorf("%w: set image.encoded (JPEG/PNG bytes) or image.raw (RGB frame)", imageio.ErrInvalidImage)
}

func specFromProto(s *pb.ModelSpec) models.Spec {
	return models.Spec{Name: s.GetName(), Version: s.GetVersion(), Label: s.GetVersionLabel()}
}

func specToProto(s models.Spec) *pb.ModelSpec {
	return &pb.ModelSpec{Name: s.Name, Version: s.Version}
}

func classificationToProto(preds []classify.Prediction) *pb.Classification {
	c := &pb.Classification{Predictions: make([]*pb.Prediction, len(preds))}
	for i, p := range preds {
		c.Predictions[i] = &pb.Prediction{Label: p.Label, ClassIndex: int32(p.Index), Score: p.Score}
	}
	return c
}
