package client_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/atelier-vision/atelier/client"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// TestWithPriorityPutsTheHeaderOnTheWire: a client made WithPriority sends
// x-atelier-priority once on every call, unary and streaming, as the server reads it;
// a client without it sends none.
func TestWithPriorityPutsTheHeaderOnTheWire(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []client.Option
		want string // the header's values, joined by ","; "" for none
	}{
		{"low", []client.Option{client.WithPriority("low")}, "low"},
		{"high", []client.Option{client.WithPriority("high")}, "high"},
		{"none", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := serveStubs(t, nil, "127.0.0.1:1")
			s := n.stubs["127.0.0.1:1"]
			got := make(chan string, 2)
			header := func(ctx context.Context) string {
				md, _ := metadata.FromIncomingContext(ctx)
				return strings.Join(md.Get(client.PriorityHeader), ",")
			}
			s.classify = func(ctx context.Context, _ *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
				got <- header(ctx)
				return &pb.ClassifyResponse{}, nil
			}
			s.classifyStream = func(st pb.ClassifyService_ClassifyStreamServer) error {
				got <- header(st.Context())
				return nil
			}
			c := newClient(t, n, "127.0.0.1:1", tc.opts...)
			if _, err := c.Classify(context.Background(), &pb.ClassifyRequest{}); err != nil {
				t.Fatal(err)
			}
			if h := <-got; h != tc.want {
				t.Errorf("Classify carried %s %q, want %q", client.PriorityHeader, h, tc.want)
			}
			err := c.ClassifyStream(context.Background(), &pb.ClassifyStreamConfig{}, nil,
				func(*pb.ClassifyStreamResponse) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			if h := <-got; h != tc.want {
				t.Errorf("ClassifyStream carried %s %q, want %q", client.PriorityHeader, h, tc.want)
			}
		})
	}
}
