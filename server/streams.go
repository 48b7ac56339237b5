package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/stream"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// The pieces that ClassifyStream and DetectStream share: the config-then-frames
// protocol, the options, and the conversion of summaries, alerts and frame errors.
// The stream machinery itself is internal/stream.

// frameMessage is a stream request after the config: ClassifyStreamRequest or
// DetectStreamRequest.
type frameMessage interface{ GetFrame() *pb.StreamFrame }

// firstConfig reads a stream's first message and returns its config, or the
// InvalidArgument that ends a stream opened without one.
func firstConfig[M any, C any](recv func() (*M, error), config func(*M) *C) (*C, error) {
	m, err := recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the stream ended before its config (send the config first, then frames)", errkind.Invalid)
		}
		return nil, err
	}
	c := config(m)
	if c == nil {
		return nil, fmt.Errorf("%w: the first message must be the stream's config, not a frame", errkind.Invalid)
	}
	return c, nil
}

// frames adapts a stream's Recv to the session's: every message after the config must
// be a frame; anything else ends the stream with InvalidArgument.
func frames[M frameMessage](recv func() (M, error)) func() (stream.Frame, error) {
	n := 0
	return func() (stream.Frame, error) {
		m, err := recv()
		if err != nil {
			return stream.Frame{}, err // io.EOF included: the client's frames ended
		}
		n++
		f := m.GetFrame()
		if f == nil {
			return stream.Frame{}, fmt.Errorf("%w: message %d after the config is not a frame (send the config once, first)", errkind.Invalid, n)
		}
		return frameFromProto(f), nil
	}
}

// frameFromProto converts one frame; what is wrong with it becomes the frame's error.
func frameFromProto(f *pb.StreamFrame) stream.Frame {
	out := stream.Frame{ID: f.GetFrameId()}
	if f.CaptureTime != nil {
		if err := f.GetCaptureTime().CheckValid(); err != nil {
			out.Err = fmt.Errorf("%w: frame %d: capture_time: %v", errkind.Invalid, f.GetFrameId(), err)
			return out
		}
		out.Captured = f.GetCaptureTime().AsTime()
	}
	if f.GetImage() == nil {
		out.Err = fmt.Errorf("%w: frame %d has no image", errkind.Invalid, f.GetFrameId())
		return out
	}
	src, err := sourceFromProto(f.GetImage())
	if err != nil {
		out.Err = fmt.Errorf("frame %d: %w", f.GetFrameId(), err)
	}
	out.Image = src
	return out
}

// streamOptions converts StreamOptions, filling the defaults of the fields left unset
// (an explicit value, 0 included, passes through); stream.Options.Validate checks the
// ranges.
func streamOptions(o *pb.StreamOptions) (stream.Options, error) {
	out := stream.Options{
		CameraID:    o.GetCameraId(),
		QueueSize:   int(int64(o.GetQueueSize())), // the value sent, so the error can name it
		TallyWindow: stream.DefaultTallyWindow,
	}
	if w := o.GetTallyWindow(); w != nil {
		out.TallyWindow = w.AsDuration()
	}
	if si := o.GetSummaryInterval(); si != nil {
		out.Summaries, out.SummaryInterval = true, si.AsDuration()
	}
	switch o.GetPolicy() {
	case pb.FramePolicy_FRAME_POLICY_UNSPECIFIED, pb.FramePolicy_FRAME_POLICY_BLOCK:
		out.Policy = stream.PolicyBlock
	case pb.FramePolicy_FRAME_POLICY_LATEST:
		out.Policy = stream.PolicyLatest
	default:
		return out, fmt.Errorf("%w: unknown frame policy %d", errkind.Invalid, o.GetPolicy())
	}
	for _, r := range o.GetAlertRules() {
		out.Rules = append(out.Rules, stream.Rule{
			Name:           r.GetName(),
			Categories:     r.GetCategories(),
			MinScore:       r.GetMinScore(),
			MinConsecutive: int(min(r.GetMinConsecutiveFrames(), 1<<20)),
			Cooldown:       r.GetCooldown().AsDuration(),
		})
	}
	return out, out.Validate()
}

// frameError is a failed frame's FrameError: the code it would have had as a unary
// call, from the one error table.
func frameError(ctx context.Context, log *slog.Logger, method string, err error) *pb.FrameError {
	err = toStatus(err)
	logInternal(ctx, log, method, err)
	st := status.Convert(err)
	return &pb.FrameError{Code: int32(st.Code()), Message: st.Message()}
}

func summaryToProto(s stream.Summary) *pb.TallySummary {
	out := &pb.TallySummary{CameraId: s.CameraID, Frames: s.Frames, Counts: make([]*pb.CategoryCount, len(s.Counts))}
	if !s.WindowStart.IsZero() {
		out.WindowStart, out.WindowEnd = timestamppb.New(s.WindowStart), timestamppb.New(s.WindowEnd)
	}
	for i, c := range s.Counts {
		out.Counts[i] = &pb.CategoryCount{Label: c.Label, Count: c.N}
	}
	return out
}

func alertToProto(a stream.Alert) *pb.Alert {
	return &pb.Alert{CameraId: a.CameraID, Rule: a.Rule, Label: a.Label, Score: a.Score,
		FrameId: a.FrameID, CaptureTime: timestamppb.New(a.Captured)}
}

// sink sends a session's output on a gRPC stream through three functions that wrap
// each kind of message in the service's response type.
type sink[R any] struct {
	result  func(stream.Result[R]) error
	summary func(*pb.TallySummary) error
	alert   func(*pb.Alert) error
}

func (k sink[R]) Result(r stream.Result[R]) error { return k.result(r) }
func (k sink[R]) Summary(s stream.Summary) error  { return k.summary(summaryToProto(s)) }
func (k sink[R]) Alert(a stream.Alert) error      { return k.alert(alertToProto(a)) }
