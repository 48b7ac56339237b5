package server

import (
	"context"
	"errors"

	"github.com/atelier-vision/atelier/internal/classify"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/stream"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// ClassifyStream classifies live video: the config, then frames, each answered in
// order through the same classify core as Classify (so the frames of every stream
// share the model's batches with unary calls), with tallies and alerts.
func (s *ClassifyServer) ClassifyStream(ss pb.ClassifyService_ClassifyStreamServer) error {
	// Frame errors are logged under the name the access log gives the call.
	const method = pb.ClassifyService_ClassifyStream_FullMethodName
	ctx := ss.Context()
	cfg, err := firstConfig(ss.Recv, (*pb.ClassifyStreamRequest).GetConfig)
	if err != nil {
		return toStatus(err)
	}
	opts, err := streamOptions(cfg.GetOptions())
	if err != nil {
		return toStatus(err)
	}
	base := classify.Request{Model: specFromProto(cfg.GetModel()), TopK: classify.DefaultTopK}
	if cfg.TopK != nil {
		base.TopK = int(cfg.GetTopK())
	}
	// Check the request's ranges and model spec once, at the start, with a stand-in image.
	if err := classify.Validate(classify.Request{Model: base.Model, TopK: base.TopK, Images: make([]imageio.Source, 1)}); err != nil {
		return toStatus(err)
	}
	// Alert rules watch for the labels of the version serving at the start.
	if len(opts.Rules) > 0 {
		labels, err := s.Core.Labels(base.Model)
		if err == nil {
			err = opts.CheckCategories(labels)
		}
		if err != nil {
			return toStatus(err)
		}
	}
	process := func(ctx context.Context, f stream.Frame) ([]classify.Prediction, stream.Observation, error) {
		req := base
		req.Images = []imageio.Source{f.Image}
		res, err := s.Core.Classify(ctx, req)
		if err != nil {
			return nil, stream.Observation{}, streamFatal(err)
		}
		preds := res.Predictions[0]
		return preds, classifyObservation(preds), nil
	}
	send := func(m *pb.ClassifyStreamResponse) error { return ss.Send(m) }
	sess := &stream.Session[[]classify.Prediction]{
		Options: opts,
		Recv:    frames(ss.Recv),
		Process: process,
		Hub:     s.Hub,
		Sink: sink[[]classify.Prediction]{
			result: func(r stream.Result[[]classify.Prediction]) error {
				res := &pb.ClassifyFrameResult{FrameId: r.FrameID, Skipped: r.Skipped}
				switch {
				case r.Err != nil:
					res.Error = frameError(ctx, s.Log, method, r.Err)
				case !r.Skipped:
					res.Classification = classificationToProto(r.Value)
				}
				return send(&pb.ClassifyStreamResponse{Message: &pb.ClassifyStreamResponse_Result{Result: res}})
			},
			summary: func(t *pb.TallySummary) error {
				return send(&pb.ClassifyStreamResponse{Message: &pb.ClassifyStreamResponse_Summary{Summary: t}})
			},
			alert: func(a *pb.Alert) error {
				return send(&pb.ClassifyStreamResponse{Message: &pb.ClassifyStreamResponse_Alert{Alert: a}})
			},
		},
	}
	return toStatus(sess.Run(ctx))
}

// classifyObservation tallies a frame's top category and checks every returned
// category against the alert rules.
func classifyObservation(preds []classify.Prediction) stream.Observation {
	var obs stream.Observation
	if len(preds) > 0 {
		obs.Counted = []string{preds[0].Label}
	}
	for _, p := range preds {
		obs.Seen = append(obs.Seen, stream.Sighting{Label: p.Label, Score: p.Score})
	}
	return obs
}

// streamFatal marks the errors that concern the whole stream rather than one frame
// (the config names a model that is not loaded, or not of the right kind): they end
// the stream instead of failing every frame alike.
func streamFatal(err error) error {
	if errors.Is(err, models.ErrNotFound) || errors.Is(err, models.ErrWrongRole) {
		return stream.Fatal(err)
	}
	return err
}
