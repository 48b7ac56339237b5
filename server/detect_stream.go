package server

import (
	"context"

	"github.com/atelier-vision/atelier/internal/detect"
	"github.com/atelier-vision/atelier/internal/stream"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// DetectStream runs Detect on live video with ClassifyStream's protocol: the config,
// then frames, each answered in order through the same detect core as Detect (so
// the frames' crops share the classifier's batches with every other request).
func (s *DetectServer) DetectStream(ss pb.DetectService_DetectStreamServer) error {
	const method = pb.DetectService_DetectStream_FullMethodName
	ctx := ss.Context()
	cfg, err := firstConfig(ss.Recv, (*pb.DetectStreamRequest).GetConfig)
	if err != nil {
		return toStatus(err)
	}
	opts, err := streamOptions(cfg.GetOptions())
	if err != nil {
		return toStatus(err)
	}
	base, err := detectStreamRequest(cfg)
	if err != nil {
		return toStatus(err)
	}
	// Alert rules watch for the labels of the versions serving at the start.
	if len(opts.Rules) > 0 {
		labels, err := s.Core.Labels(base)
		if err == nil {
			err = opts.CheckCategories(labels)
		}
		if err != nil {
			return toStatus(err)
		}
	}
	process := func(ctx context.Context, f stream.Frame) (detect.Result, stream.Observation, error) {
		req := base
		req.Image = f.Image
		res, err := s.Core.Detect(ctx, req)
		if err != nil {
			return detect.Result{}, stream.Observation{}, streamFatal(err)
		}
		return res, detectObservation(res.Detections), nil
	}
	send := func(m *pb.DetectStreamResponse) error { return ss.Send(m) }
	sess := &stream.Session[detect.Result]{
		Options: opts,
		Recv:    frames(ss.Recv),
		Process: process,
		Hub:     s.Hub,
		Sink: sink[detect.Result]{
			result: func(r stream.Result[detect.Result]) error {
				res := &pb.DetectFrameResult{FrameId: r.FrameID, Skipped: r.Skipped}
				if r.Err != nil {
					res.Error = frameError(ctx, s.Log, method, r.Err)
				}
				for _, d := range r.Value.Detections {
					res.Detections = append(res.Detections, detectionToProto(d))
				}
				return send(&pb.DetectStreamResponse{Message: &pb.DetectStreamResponse_Result{Result: res}})
			},
			summary: func(t *pb.TallySummary) error {
				return send(&pb.DetectStreamResponse{Message: &pb.DetectStreamResponse_Summary{Summary: t}})
			},
			alert: func(a *pb.Alert) error {
				return send(&pb.DetectStreamResponse{Message: &pb.DetectStreamResponse_Alert{Alert: a}})
			},
		},
	}
	return toStatus(sess.Run(ctx))
}

// detectStreamRequest converts the config into the request every frame is sent with,
// checking its ranges once, at the start.
func detectStreamRequest(cfg *pb.DetectStreamConfig) (detect.Request, error) {
	req := detectDefaults(cfg.GetModel(), cfg.GetClassifier(), cfg.GetSkipClassification(), cfg.MinScore, cfg.MaxDetections, nil)
	var err error
	if req.Tiling, err = tilingFromProto(cfg.GetTiling()); err != nil {
		return req, err
	}
	return req, detect.Validate(req)
}

// detectObservation tallies each garment once (its fine category, or its garment type
// when it was not classified) and checks both names against the alert rules.
func detectObservation(dets []detect.Detection) stream.Observation {
	var obs stream.Observation
	for _, d := range dets {
		label := d.Type
		if len(d.Classification) > 0 {
			label = d.Classification[0].Label
		}
		obs.Counted = append(obs.Counted, label)
		obs.Seen = append(obs.Seen, stream.Sighting{Label: d.Type, Score: d.Score})
		for _, p := range d.Classification {
			obs.Seen = append(obs.Seen, stream.Sighting{Label: p.Label, Score: p.Score})
		}
	}
	return obs
}
