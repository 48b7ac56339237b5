package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/atelier-vision/atelier/internal/batching"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/internal/classify"
	"github.com/atelier-vision/atelier/internal/detect"
	"github.com/atelier-vision/atelier/internal/generate"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/stream"
)

// errorCodes is the one table from the core's sentinel errors to gRPC codes. The
// error's own message (which names the field and the limit) goes to the client.
var errorCodes = []struct {
	err  error
	code codes.Code
}{
	{imageio.ErrInvalidImage, codes.InvalidArgument},
	{imageio.ErrTooLarge, codes.InvalidArgument},
	{classify.ErrInvalidRequest, codes.InvalidArgument},
	{detect.ErrInvalidRequest, codes.InvalidArgument},
	{generate.ErrInvalidRequest, codes.InvalidArgument},
	{errInvalidRequest, codes.InvalidArgument},
	{stream.ErrInvalidOptions, codes.InvalidArgument},
	{models.ErrNotFound, codes.NotFound},
	{models.ErrWrongRole, codes.FailedPrecondition},
	{batching.ErrQueueFull, codes.ResourceExhausted},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
}

// errInvalidRequest marks a request the handler itself refuses (malformed oneofs).
var errInvalidRequest = errors.New("invalid request")

// toStatus maps a core error to a status error. An error outside the table becomes
// Internal with a generic message; the details go to the log, not to the client.
func toStatus(ctx context.Context, log *slog.Logger, method string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return status.Error(e.code, err.Error())
		}
	}
	log.ErrorContext(ctx, "internal error", "method", method, "err", err)
	return status.Error(codes.Internal, "internal error; the server log has the details")
}
