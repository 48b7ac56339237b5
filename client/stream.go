package client

import (
	"context"
	"errors"
	"io"
	"iter"

	"google.golang.org/grpc"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// ClassifyStream classifies live video on one bidirectional stream: it sends cfg,
// then every frame from frames, and calls onMessage for each message the server sends
// (frame results in frame order, tally summaries, alerts). It returns nil once the
// server has answered every frame and closed the stream; the callback's error, which
// ends the stream; or the stream's status error. frames (nil: none) is read on its own goroutine
// and must end (or stop yielding) once ctx is done.
func (c *Client) ClassifyStream(ctx context.Context, cfg *pb.ClassifyStreamConfig, frames iter.Seq[*pb.StreamFrame],
	onMessage func(*pb.ClassifyStreamResponse) error) error {
	ctx, cancel := c.stream(ctx)
	defer cancel()
	s, err := c.classify.ClassifyStream(ctx)
	if err != nil {
		return err
	}
	first := &pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Config{Config: cfg}}
	wrap := func(f *pb.StreamFrame) *pb.ClassifyStreamRequest {
		return &pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Frame{Frame: f}}
	}
	return bidi(ctx, cancel, s, first, frames, wrap, onMessage)
}

// DetectStream runs Detect on live video with the same protocol as ClassifyStream.
func (c *Client) DetectStream(ctx context.Context, cfg *pb.DetectStreamConfig, frames iter.Seq[*pb.StreamFrame],
	onMessage func(*pb.DetectStreamResponse) error) error {
	ctx, cancel := c.stream(ctx)
	defer cancel()
	s, err := c.detect.DetectStream(ctx)
	if err != nil {
		return err
	}
	first := &pb.DetectStreamRequest{Message: &pb.DetectStreamRequest_Config{Config: cfg}}
	wrap := func(f *pb.StreamFrame) *pb.DetectStreamRequest {
		return &pb.DetectStreamRequest{Message: &pb.DetectStreamRequest_Frame{Frame: f}}
	}
	return bidi(ctx, cancel, s, first, frames, wrap, onMessage)
}

// Interpolate morphs one design into another and calls onStep for every image, as the
// server draws it. The whole walk has the unary deadline.
func (c *Client) Interpolate(ctx context.Context, req *pb.InterpolateRequest, onStep func(*pb.InterpolateResponse) error) error {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	s, err := c.generate.Interpolate(ctx, req)
	if err != nil {
		return err
	}
	return receive(s, onStep)
}

// WatchAlerts calls onAlert for every alert raised on the cameras req selects, until
// ctx is done (then it returns ctx's error as a status) or onAlert returns an error.
// ready, if not nil, is called once the server has the subscription in place: every
// alert raised after that reaches onAlert.
func (c *Client) WatchAlerts(ctx context.Context, req *pb.WatchAlertsRequest, ready func(), onAlert func(*pb.Alert) error) error {
	ctx, cancel := c.stream(ctx)
	defer cancel()
	s, err := c.alerts.WatchAlerts(ctx, req)
	if err != nil {
		return err
	}
	if ready != nil {
		if _, err := s.Header(); err == nil { // the server sends headers once subscribed
			ready()
		}
	}
	return receive(s, func(m *pb.WatchAlertsResponse) error { return onAlert(m.GetAlert()) })
}

// receive calls on for every message of a server stream until it ends.
func receive[Resp any](s grpc.ServerStreamingClient[Resp], on func(*Resp) error) error {
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := on(m); err != nil {
			return err
		}
	}
}

// bidi runs a config-then-frames stream: one goroutine sends, the caller's goroutine
// receives and calls on. Whatever ends the stream, the sender has exited on return.
func bidi[Req, Resp any](ctx context.Context, cancel context.CancelFunc, s grpc.BidiStreamingClient[Req, Resp],
	first *Req, frames iter.Seq[*pb.StreamFrame], wrap func(*pb.StreamFrame) *Req, on func(*Resp) error) error {
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		if s.Send(first) != nil {
			return // the stream is broken; Recv reports why
		}
		if frames != nil {
			for f := range frames {
				if ctx.Err() != nil || s.Send(wrap(f)) != nil {
					return
				}
			}
		}
		s.CloseSend()
	}()
	err := receive(s, on)
	cancel() // stops the sender if the stream ended before the frames did
	<-sent
	return err
}
