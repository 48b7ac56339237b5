package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/atelier-vision/atelier/internal/detect"
	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/stream"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// Detector is the core that DetectService calls; *detect.Detector in production.
type Detector interface {
	Detect(ctx context.Context, req detect.Request) (detect.Result, error)
	// Labels names the detector and classifier req asks for now, with their labels,
	// for the check of a stream's alert rules at its start.
	Labels(req detect.Request) (map[string][]string, error)
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
		return nil, toStatus(err)
	}
	res, err := s.Core.Detect(ctx, dreq)
	if err != nil {
		return nil, toStatus(err)
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
		resp.Detections[i] = detectionToProto(d)
	}
	return resp, nil
}

// detectRequest converts the protobuf request; the core checks the ranges.
func detectRequest(req *pb.DetectRequest) (detect.Request, error) {
	out := detectDefaults(req.GetModel(), req.GetClassifier(), req.GetSkipClassification(), req.MinScore, req.MaxDetections, req.TopK)
	var err error
	if out.Tiling, err = tilingFromProto(req.GetTiling()); err != nil {
		return out, err
	}
	if req.GetImage() == nil {
		return out, errMissing("image")
	}
	src, err := sourceFromProto(req.GetImage())
	if err != nil {
		return out, err
	}
	out.Image = src
	return out, nil
}

// detectDefaults is the request Detect and DetectStream build from their messages:
// detect.Defaults, with every field the client set.
func detectDefaults(model, classifier *pb.ModelSpec, skip bool, minScore *float32, maxDetections, topK *int32) detect.Request {
	req := detect.Defaults
	req.Model, req.Classifier, req.SkipClassification = specFromProto(model), specFromProto(classifier), skip
	if minScore != nil {
		req.MinScore = *minScore
	}
	if maxDetections != nil {
		req.MaxDetections = int(*maxDetections)
	}
	if topK != nil {
		req.TopK = int(*topK)
	}
	return req
}

// tilingFromProto converts the tiling mode; unset means auto.
func tilingFromProto(t pb.Tiling) (detect.Tiling, error) {
	switch t {
	case pb.Tiling_TILING_UNSPECIFIED, pb.Tiling_TILING_AUTO:
		return detect.TilingAuto, nil
	case pb.Tiling_TILING_OFF:
		return detect.TilingOff, nil
	case pb.Tiling_TILING_ON:
		return detect.TilingOn, nil
	}
	return 0, fmt.Errorf("%w: unknown tiling %d", errkind.Invalid, t)
}

// detectionToProto converts one detected garment.
func detectionToProto(d detect.Detection) *pb.Detection {
	out := &pb.Detection{
		Box:         &pb.BoundingBox{XMin: d.Box.XMin, YMin: d.Box.YMin, XMax: d.Box.XMax, YMax: d.Box.YMax},
		GarmentType: d.Type,
		Score:       d.Score,
	}
	if d.Classification != nil {
		out.Classification = classificationToProto(d.Classification)
	}
	return out
}
