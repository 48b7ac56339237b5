package server

import (
	"context"
	"errors"
	"io"
	"strings"

	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/internal/errkind"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

// streamWindow is how many requests of one stream may be in flight at once; they
// run concurrently (so they can share batches) and are answered in order.
const streamWindow = 16

// ModelStreamInfer answers a stream of requests in order. A request that fails gets
// its error in error_message and the stream goes on; the stream ends when the client
// closes its side (after every answer is sent) or on a transport error.
func (s *InferenceServer) ModelStreamInfer(stream oip.GRPCInferenceService_ModelStreamInferServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	// The loop below holds the oldest request outside the channel while it waits for
	// its answer, so the channel holds one fewer for streamWindow in flight.
	pending := make(chan chan *oip.ModelStreamInferResponse, streamWindow-1)
	recvErr := make(chan error, 1)
	go func() {
		defer close(pending) // after recvErr holds the error, so the loop below sees it
		if err := s.receiveRequests(ctx, stream, pending); err != nil {
			recvErr <- toStatus(err)
		}
	}()
	for done := range pending {
		var resp *oip.ModelStreamInferResponse
		select {
		case resp = <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	select {
	case err := <-recvErr:
		return err
	default:
		return nil
	}
}

// receiveRequests reads the stream's requests and starts each one's answer, queueing
// where it will arrive in pending, until the client's side ends (nil), Recv fails or
// ctx is done. A panic here ends the stream with that panic as its error, through
// the stream's receive error, instead of taking the server down.
func (s *InferenceServer) receiveRequests(ctx context.Context, stream oip.GRPCInferenceService_ModelStreamInferServer,
	pending chan<- chan *oip.ModelStreamInferResponse) (err error) {
	defer errkind.Recover(&err)
	for {
		req, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		done := make(chan *oip.ModelStreamInferResponse, 1)
		select {
		case pending <- done:
		case <-ctx.Done():
			return nil
		}
		go func() { done <- s.streamAnswer(ctx, req) }()
	}
}

// streamAnswer runs one stream request, turning its error into error_message.
func (s *InferenceServer) streamAnswer(ctx context.Context, req *oip.ModelInferRequest) (resp *oip.ModelStreamInferResponse) {
	var err error
	defer func() {
		if err != nil {
			st := toStatus(err)
			logInternal(ctx, s.Log, oip.GRPCInferenceService_ModelStreamInfer_FullMethodName, st)
			// error_message is a proto3 string: a message with bytes that are not UTF-8
			// would fail the Send and end the stream, losing the answers behind it.
			msg := strings.ToValidUTF8(status.Code(st).String()+": "+status.Convert(st).Message(), "\uFFFD")
			resp = &oip.ModelStreamInferResponse{ErrorMessage: msg,
				InferResponse: &oip.ModelInferResponse{Id: req.GetId(), ModelName: req.GetModelName(), ModelVersion: req.GetModelVersion()}}
		}
	}()
	defer errkind.Recover(&err)
	r, err := s.infer(ctx, req)
	if err != nil {
		return nil
	}
	return &oip.ModelStreamInferResponse{InferResponse: r}
}
