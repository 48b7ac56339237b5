package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/internal/lograte"
	"github.com/atelier-vision/atelier/internal/metrics"
)

// accessLogBurst is how many access lines of failed calls the caller caused are
// written per second at info level; the rest are counted instead.
const accessLogBurst = 10

// accessLog writes one line per call, at a level that says whose fault a failure is,
// and counts the call in the metrics:
//   - a call that succeeds: debug;
//   - a server fault (Internal, Unknown, DataLoss): error, every one, with its cause;
//   - any other failure is the caller's doing (a bad argument, an unknown model or
//     camera, a missing token, its deadline, a hang-up, a full queue): info, but at
//     most accessLogBurst lines a second. A client can cause these at any rate, and a
//     line each at 20,000 calls/s fills a disk; the lines left out are counted in
//     atelier_log_lines_suppressed_total, and the next line written says how many
//     (suppressed=N). atelier_rpc_total counts every call.
//
// At debug level (--log-level debug) every call has its line.
//
// A line names the caller's address (peer) and, when the call carries them, the
// client's x-request-id (request_id) and its W3C traceparent's trace ID (trace_id),
// so that one failed call can be found from either end.
type accessLog struct {
	log     *slog.Logger
	metrics *metrics.Registry
	limit   lograte.Limiter // the caller-fault lines
}

func newAccessLog(log *slog.Logger, m *metrics.Registry) *accessLog {
	a := &accessLog{log: log, metrics: m, limit: lograte.Limiter{PerSecond: accessLogBurst}}
	if m != nil {
		m.AddSource(a.writeMetrics)
	}
	return a
}

func (a *accessLog) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		start := time.Now()
		a.metrics.StartRPC(info.FullMethod)
		ctx, note := withNote(ctx)
		resp, err := next(ctx, req)
		a.end(ctx, info.FullMethod, true, start, err, note)
		return resp, err
	}
}

func (a *accessLog) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
		start := time.Now()
		a.metrics.StartRPC(info.FullMethod)
		ctx, note := withNote(ss.Context())
		err := next(srv, &ctxStream{ss, ctx})
		a.end(ctx, info.FullMethod, false, start, err, note)
		return err
	}
}

// ctxStream is a server stream with a context of the interceptor's making.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

// end counts one finished call and logs it. A token is named by its fingerprint only.
func (a *accessLog) end(ctx context.Context, method string, unary bool, start time.Time, err error, note *callNote) {
	code := status.Code(err)
	took := time.Since(start)
	a.metrics.EndRPC(method, code.String(), took, unary)
	level := slog.LevelInfo
	switch code {
	case codes.OK:
		level = slog.LevelDebug
	case codes.Internal, codes.Unknown, codes.DataLoss:
		level = slog.LevelError
	}
	if !a.log.Enabled(ctx, level) {
		return // the access log is at debug level: most calls build no line at all
	}
	var suppressed int64
	if level == slog.LevelInfo && !a.log.Enabled(ctx, slog.LevelDebug) {
		var ok bool
		if ok, suppressed = a.limit.Admit(time.Now()); !ok {
			return
		}
	}
	attrs := []any{"method", method, "code", code.String(), "ms", float64(took.Microseconds()) / 1000}
	attrs = appendCallIDs(attrs, ctx)
	if note.fingerprint != "" {
		attrs = append(attrs, "token", note.fingerprint)
	}
	if err != nil {
		attrs = append(attrs, logAttrs(err)...)
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	a.log.Log(ctx, level, "rpc", attrs...)
}

// maxRequestID is the longest x-request-id logged; a longer one, or one with bytes
// other than visible ASCII, is logged as request_id_refused instead: metadata may be
// megabytes, and the log is not the client's to fill.
const maxRequestID = 128

// appendCallIDs adds the caller's address and the call's request and trace IDs.
func appendCallIDs(attrs []any, ctx context.Context) []any {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, "peer", p.Addr.String())
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if ids := md.Get("x-request-id"); len(ids) > 0 {
		if id := ids[0]; len(id) <= maxRequestID && visibleASCII(id) {
			attrs = append(attrs, "request_id", id)
		} else {
			attrs = append(attrs, "request_id_refused", fmt.Sprintf("%d bytes, over %d or not visible ASCII", len(id), maxRequestID))
		}
	}
	if tp := md.Get("traceparent"); len(tp) > 0 {
		if id, ok := traceID(tp[0]); ok {
			attrs = append(attrs, "trace_id", id)
		}
	}
	return attrs
}

func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}

// traceID returns the trace ID of a W3C traceparent header
// (version "-" 32 hex trace ID "-" 16 hex parent ID "-" 2 hex flags), if it is one.
func traceID(tp string) (string, bool) {
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' || (len(tp) > 55 && tp[55] != '-') {
		return "", false
	}
	for _, part := range []string{tp[:2], tp[3:35], tp[36:52], tp[53:55]} {
		for i := 0; i < len(part); i++ {
			if c := part[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return "", false
			}
		}
	}
	id := tp[3:35]
	if tp[:2] == "ff" || id == "00000000000000000000000000000000" {
		return "", false
	}
	return id, true
}

func (a *accessLog) writeMetrics(w io.Writer) {
	fmt.Fprintln(w, "# HELP atelier_log_lines_suppressed_total Access log lines of failed calls the caller caused, left out over the limit of a few a second (atelier_rpc_total counts every call).")
	fmt.Fprintln(w, "# TYPE atelier_log_lines_suppressed_total counter")
	fmt.Fprintf(w, "atelier_log_lines_suppressed_total %d\n", a.limit.Suppressed())
}
