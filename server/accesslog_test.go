package server

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/internal/classify"
	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/metrics"
	"github.com/atelier-vision/atelier/internal/models"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// namedFailures is a classify core whose answer depends on the model asked for: a
// name starting "boom" is an internal error, any other name is not found.
type namedFailures struct{}

func (namedFailures) Classify(_ context.Context, req classify.Request) (classify.Result, error) {
	if strings.HasPrefix(req.Model.Name, "boom") {
		return classify.Result{}, fmt.Errorf("tf: session for %s exploded", req.Model.Name)
	}
	return classify.Result{}, fmt.Errorf("%w: model %q", errkind.NotFound, req.Model.Name)
}

func (namedFailures) Labels(models.Spec) (map[string][]string, error) { return nil, nil }

// logLines counts the lines of log that contain every one of parts.
func logLines(log string, parts ...string) int {
	n := 0
lines:
	for _, line := range strings.Split(log, "\n") {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue lines
			}
		}
		n++
	}
	return n
}

// TestClientErrorsDoNotFloodTheLog sends a flood of calls the caller got wrong (an
// unknown model each time) to a server logging at info, atelierd's default: the
// access log writes a bounded number of lines and says how many it left out, while
// every internal error still gets its own line. At debug level every call is logged.
func TestClientErrorsDoNotFloodTheLog(t *testing.T) {
	const flood, internal = 500, 20
	for _, tc := range []struct {
		level        slog.Level
		maxPerSecond int
	}{
		{slog.LevelInfo, accessLogBurst},
		{slog.LevelDebug, flood},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			reg := metrics.New()
			conn, _, logs := serveLevel(t, tc.level, Options{Metrics: reg}, nil, Cores{Classifier: namedFailures{}})
			client := pb.NewClassifyServiceClient(conn)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			img := []*pb.Image{{Data: &pb.Image_Encoded{Encoded: []byte("x")}}}
			start := time.Now()
			for i := range flood {
				_, err := client.Classify(ctx, &pb.ClassifyRequest{Model: &pb.ModelSpec{Name: fmt.Sprintf("nosuch-%d", i)}, Images: img})
				if status.Code(err) != codes.NotFound {
					t.Fatalf("call %d: got %v, want NotFound", i, err)
				}
			}
			for i := range internal {
				_, err := client.Classify(ctx, &pb.ClassifyRequest{Model: &pb.ModelSpec{Name: fmt.Sprintf("boom-%d", i)}, Images: img})
				if status.Code(err) != codes.Internal {
					t.Fatalf("call %d: got %v, want Internal", i, err)
				}
			}
			// The interceptor logs after the status is sent; wait for the last line.
			last := fmt.Sprintf("boom-%d exploded", internal-1)
			for deadline := time.Now().Add(2 * time.Second); !strings.Contains(logs.String(), last) && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			out := logs.String()
			// The limit is per second: a slow machine may spread the flood over several.
			limit := min(flood, tc.maxPerSecond*(int(time.Since(start)/time.Second)+1))
			if got := logLines(out, "msg=rpc", "code=NotFound"); got < 1 || got > limit {
				t.Errorf("got %d access lines for %d NotFound calls, want 1..%d", got, flood, limit)
			}
			left := flood - logLines(out, "msg=rpc", "code=NotFound")
			var m strings.Builder
			reg.Write(&m)
			if want := fmt.Sprintf("atelier_log_lines_suppressed_total %d\n", left); !strings.Contains(m.String(), want) {
				t.Errorf("metrics lack %q:\n%s", want, m.String())
			}
			// A line written says how many were left out since the line before it, so a
			// flood spread over two seconds (a slow machine's) has already reported the
			// first second's in its first line of the next.
			pending := left
			for _, line := range strings.Split(out, "\n") {
				if _, n, ok := strings.Cut(line, " suppressed="); ok && strings.Contains(line, "code=NotFound") {
					held, _ := strconv.Atoi(strings.Fields(n)[0])
					pending -= held
				}
			}
			if pending > 0 {
				// A second later the next caller-fault line says how many were left out.
				time.Sleep(time.Second)
				client.Classify(ctx, &pb.ClassifyRequest{Model: &pb.ModelSpec{Name: "late"}, Images: img})
				want := fmt.Sprintf("suppressed=%d", pending)
				for deadline := time.Now().Add(2 * time.Second); !strings.Contains(logs.String(), want) && time.Now().Before(deadline); {
					time.Sleep(5 * time.Millisecond)
				}
				if logLines(logs.String(), `"late`, want) != 1 {
					t.Errorf("no line says %s", want)
				}
			}
			if got := logLines(out, "level=ERROR", "msg=rpc", "code=Internal", "exploded"); got != internal {
				t.Errorf("got %d error lines for %d internal errors, want one each", got, internal)
			}
			if t.Failed() {
				t.Logf("log (%d bytes), first lines:\n%s", len(out), head(out, 30))
			}
		})
	}
}

func head(s string, lines int) string {
	parts := strings.SplitN(s, "\n", lines+1)
	return strings.Join(parts[:min(lines, len(parts))], "\n")
}

// TestAccessLogQuotesRequestText sends a model name holding a newline, an ANSI escape
// and a forged log record: it reaches the log quoted, on the call's own line.
func TestAccessLogQuotesRequestText(t *testing.T) {
	conn, _, logs := serveLevel(t, slog.LevelInfo, Options{}, nil, Cores{Classifier: namedFailures{}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	name := "x\nlevel=ERROR msg=\"forged\"\x1b[2J\x1b[31m\r"
	_, err := pb.NewClassifyServiceClient(conn).Classify(ctx, &pb.ClassifyRequest{Model: &pb.ModelSpec{Name: name},
		Images: []*pb.Image{{Data: &pb.Image_Encoded{Encoded: []byte("x")}}}})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("got %v, want NotFound", err)
	}
	for deadline := time.Now().Add(2 * time.Second); !strings.Contains(logs.String(), "msg=rpc") && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	out := logs.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "time=") || !strings.Contains(lines[0], "level=INFO msg=rpc") ||
		strings.ContainsAny(out, "\x1b\r") {
		t.Fatalf("the request's text reached the log unquoted, want one quoted line:\n%s", out)
	}
}

// TestAccessLogNamesTheCall: a failed call's line names the caller's address and the
// request and trace IDs the client sent, and refuses an ID that would fill the log.
func TestAccessLogNamesTheCall(t *testing.T) {
	conn, _, logs := serveLevel(t, slog.LevelInfo, Options{}, nil, Cores{Classifier: namedFailures{}})
	call := func(md ...string) string {
		before := len(logs.String())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, md...)
		_, err := pb.NewClassifyServiceClient(conn).Classify(ctx, &pb.ClassifyRequest{Model: &pb.ModelSpec{Name: "nope"},
			Images: []*pb.Image{{Data: &pb.Image_Encoded{Encoded: []byte("x")}}}})
		if status.Code(err) != codes.NotFound {
			t.Fatalf("got %v, want NotFound", err)
		}
		for deadline := time.Now().Add(2 * time.Second); !strings.Contains(logs.String()[before:], "msg=rpc") && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		return logs.String()[before:]
	}
	for _, c := range []struct {
		md        []string
		want, not []string
	}{
		{[]string{"x-request-id", "order-7f3a", "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
			[]string{"peer=", "request_id=order-7f3a", "trace_id=4bf92f3577b34da6a3ce929d0e0e4736"}, nil},
		{nil, []string{"peer="}, []string{"request_id", "trace_id"}},
		{[]string{"x-request-id", strings.Repeat("a", maxRequestID+1)},
			[]string{`request_id_refused="129 bytes, over 128 or not visible ASCII"`}, []string{"aaaa"}},
		{[]string{"x-request-id", "two words"}, []string{"request_id_refused="}, []string{"words"}},
		{[]string{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"}, nil, []string{"trace_id"}},
		{[]string{"traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}, nil, []string{"trace_id"}},
		{[]string{"traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"}, nil, []string{"trace_id"}},
	} {
		out := call(c.md...)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("metadata %q: the line lacks %q:\n%s", c.md, w, out)
			}
		}
		for _, n := range c.not {
			if strings.Contains(out, n) {
				t.Errorf("metadata %q: the line has %q:\n%s", c.md, n, out)
			}
		}
	}
}
