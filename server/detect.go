package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/atelier-vision/atelier/internal/detect"
	"github.com/atelier-vision/atelier/internal/stream"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// Detector is the core that DetectService calls; *detect.Detector in production.
type Detector interface {
	Detect(ctx context.Context, req detect.Request) (detect.Result, error)
}

// DetectServer implements atelier.v1.DetectService.
type DetectServer struct {
	pb.UnsafeDetectServiceServer
	Core Detector
	// Hub receives the alerts of every DetectStream (detect_stream.go).
	Hub *stream.Hub
	Log *slog.Logger
}

// Detect finds the garments in one image and classifies each one.
func (s *DetectServer) Detect(ctx context.Context, req *pb.DetectRequest) (*pb.DetectResponse, error) {
	dreq, err := detectRequest(req)
	if err != nil {
		return nil, toStatus(ctx, s.Log, "Detect", err)
	}
	res, err := s.Core.Detect(ctx, dreq)
	if err != nil {
		return nil, toStatus(ctx, s.Log, "Detect", err)
	}
	resp := &pb.DetectResponse{
		Detector:    specToProto(res.Detector),
		Detections:  make([]*pb.Detection, len(res.Detections)),
		ImageWidth:  uint32(res.Width),
		ImageHeight: uint32(res.Height),
	}
	if res.Classifier.Name != "" {
		resp.Classifier = specToProto(res.Classifier)
	}
	for i, d := range res.Detections {
		resp.Detections[i] = &pb.Detection{
			Box:         &pb.BoundingBox{XMin: d.Box.XMin, YMin: d.Box.YMin, XMax: d.Box.XMax, YMax: d.Box.YMax},
			GarmentType: d.Type,
			Score:       d.Score,
		}
		if d.Classification != nil {
			resp.Detections[i].Classification = classificationToProto(d.Classification)
		}
	}
	return resp, nil
}

// detectRequest converts the protobuf request, filling in the documented defaults. A
// field that is set must be in range; the core checks the ranges.
func detectRequest(req *pb.DetectRequest) (detect.Request, error) {
	out := detect.Request{
		Model:              specFromProto(req.GetModel()),
		MinScore:           detect.DefaultMinScore,
		SkipClassification: req.GetSkipClassification(),
		Classifier:         specFromProto(req.GetClassifier()),
	}
	if req.MinScore != nil {
		out.MinScore = req.GetMinScore()
	}
	if req.MaxDetections != nil {
		if req.GetMaxDetections() <= 0 {
			return out, fmt.Errorf("%w: max_detections %d is out of range 1..%d (leave it unset for %d)",
				detect.ErrInvalidRequest, req.GetMaxDetections(), detect.MaxDetections, detect.DefaultMaxDetections)
		}
		out.MaxDetections = int(req.GetMaxDetections())
	}
	if req.TopK != nil {
		if req.GetTopK() <= 0 {
			return out, fmt.Errorf("%w: top_k %d must be at least 1 (leave it unset for %d)",
				detect.ErrInvalidRequest, req.GetTopK(), detect.DefaultTopK)
		}
		out.TopK = int(req.GetTopK())
	}
	if req.GetImage() == nil {
		return out, fmt.Errorf("%w: image is required", detect.ErrInvalidRequest)
	}
	src, err := sourceFromProto(req.GetImage())
	if err != nil {
		return out, err
	}
	out.Image = src
	return out, nil
}
