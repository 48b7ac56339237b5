package server

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// rawCodec sends a []byte as it is, whatever the method's request type: a client
// whose messages are not the method's protobuf.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)      { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error { return nil }
func (rawCodec) Name() string                       { return "proto" }

var _ encoding.Codec = rawCodec{}

// TestUndecodableStreamMessage: a stream message that is not protobuf, or has a
// string that is not UTF-8, is counted and logged as the caller's INVALID_ARGUMENT, at
// info under the caller-fault rate limit, not as a server fault with an ERROR line per
// call. The client gets gRPC-Go's own INTERNAL ("grpc: failed to unmarshal the received
// message"), which gRPC-Go sends before the handler returns; if that text changes,
// this test fails and undecodable must follow.
func TestUndecodableStreamMessage(t *testing.T) {
	conn, _, logs := serveLevel(t, slog.LevelInfo, Options{}, nil, Cores{Classifier: namedFailures{}})
	notUTF8 := []byte{0x0a, 0x04, 0x0a, 0x02, 0xff, 0xfe} // config{model{name: "\xff\xfe"}}
	for _, c := range []struct {
		method string
		desc   grpc.StreamDesc
		msg    []byte
	}{
		{"/atelier.v1.ClassifyService/ClassifyStream", grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, []byte{0xff}},
		{"/atelier.v1.ClassifyService/ClassifyStream", grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, notUTF8},
		{"/atelier.v1.DetectService/DetectStream", grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, []byte{0xff}},
		{"/atelier.v1.AlertService/WatchAlerts", grpc.StreamDesc{ServerStreams: true}, []byte{0x0a, 0x02, 0xff, 0xfe}}, // camera_ids: "\xff\xfe"
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := conn.NewStream(ctx, &c.desc, c.method, grpc.ForceCodec(rawCodec{}))
		if err != nil {
			t.Fatal(err)
		}
		s.SendMsg(c.msg)
		s.CloseSend()
		var out []byte
		err = s.RecvMsg(&out)
		cancel()
		if status.Code(err) != codes.Internal || !strings.HasPrefix(status.Convert(err).Message(), "grpc: failed to unmarshal the received message") {
			t.Errorf("%s with % x: got %v, want gRPC-Go's INTERNAL failed to unmarshal", c.method, c.msg, err)
		}
	}
	for deadline := time.Now().Add(2 * time.Second); strings.Count(logs.String(), "msg=rpc") < 4 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if strings.Contains(logs.String(), "level=ERROR") || strings.Count(logs.String(), "level=INFO msg=rpc") != 4 ||
		strings.Count(logs.String(), "code=InvalidArgument") != 4 || strings.Count(logs.String(), `err="the message could not be decoded as the method's request`) != 4 {
		t.Errorf("want 4 info lines of InvalidArgument and no error line:\n%s", logs.String())
	}
	// The server goes on serving.
	if _, err := pb.NewClassifyServiceClient(conn).Classify(context.Background(), &pb.ClassifyRequest{}); status.Code(err) != codes.NotFound {
		t.Errorf("a call after: got %v, want the fake's NOT_FOUND", err)
	}
}
