package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/internal/errkind"
)

// errorCodes is the one table from the core's error kinds (internal/errkind) to gRPC
// codes. The error's own message, which names the field and the limit, goes to the
// client.
var errorCodes = []struct {
	err  error
	code codes.Code
}{
	{errkind.Invalid, codes.InvalidArgument},
	{errkind.NotFound, codes.NotFound},
	{errkind.FailedPrecondition, codes.FailedPrecondition},
	{errkind.Overloaded, codes.ResourceExhausted},
	{errkind.Unavailable, codes.Unavailable},
	{errkind.Unauthenticated, codes.Unauthenticated},
	{errkind.PermissionDenied, codes.PermissionDenied},
	{errkind.Unimplemented, codes.Unimplemented},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
}

// internalMessage is all a client learns of an internal error.
const internalMessage = "internal error; the server log has the details"

// internalError is an error outside the table. The client gets Internal with
// internalMessage; the logging interceptor (or frameError, for a stream's frame)
// writes its cause to the log, once.
type internalError struct{ cause error }

func (e *internalError) Error() string { return internalMessage }
func (e *internalError) Unwrap() error { return e.cause }
func (e *internalError) GRPCStatus() *status.Status {
	return status.New(codes.Internal, internalMessage)
}

// toStatus maps a core error to a status error through the table. A status error
// passes through unchanged; an error outside the table becomes an internalError.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return status.Error(e.code, clipMessage(err.Error()))
		}
	}
	return &internalError{cause: err}
}

// logAttrs returns what the log should say about a call's error: its status message,
// and for an internal error the cause (and a panic's stack), which the client never sees.
func logAttrs(err error) []any {
	attrs := []any{"err", status.Convert(err).Message()}
	var ie *internalError
	if errors.As(err, &ie) {
		attrs = append(attrs, "cause", ie.cause.Error())
		var p *errkind.Panic
		if errors.As(ie.cause, &p) {
			attrs = append(attrs, "stack", string(p.Stack))
		}
	}
	return attrs
}

// errMissing is the error for a required field left empty.
func errMissing(field string) error {
	return fmt.Errorf("%w: %s is required", errkind.Invalid, field)
}

// logInternal logs an internal error that does not end the call (a stream frame's);
// method is the call's full method name, as the access log line names it.
func logInternal(ctx context.Context, log *slog.Logger, method string, err error) {
	var ie *internalError
	if errors.As(err, &ie) {
		log.ErrorContext(ctx, "internal error", append([]any{"method", method}, logAttrs(err)[2:]...)...)
	}
}

// Bounds on what a status message echoes of a request: a client's default limit for
// all metadata is 8 KiB, and a message over it reaches the caller as
// "RESOURCE_EXHAUSTED: Stream removed" instead of its own code.
const (
	maxEchoWord      = 128  // a longer word (a 10,000-character model name) is cut
	maxStatusMessage = 2048 // and so is a longer message
)

// clipMessage bounds a status message: each word longer than maxEchoWord keeps its
// first bytes and says how long it was, and the whole message stays within
// maxStatusMessage, so the message still names the field and the limit.
func clipMessage(msg string) string {
	if len(msg) <= maxEchoWord {
		return msg
	}
	words := strings.Split(msg, " ")
	for i, w := range words {
		if len(w) > maxEchoWord {
			words[i] = clipText(w, maxEchoWord)
		}
	}
	return clipText(strings.Join(words, " "), maxStatusMessage)
}

// clipText cuts s to about n bytes on a character boundary, saying how long it was.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 32
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s...[%d bytes]", s[:cut], len(s))
}
