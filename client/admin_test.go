package client_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/client"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// adminRPCs are the calls that change the server's models.
var adminRPCs = []rpcCase{
	{"ReloadRepository", func(s *stub, h func(context.Context) error) {
		s.reload = handle[pb.ReloadRepositoryRequest](h, &pb.ReloadRepositoryResponse{})
	}, func(ctx context.Context, c *client.Client) error {
		_, err := c.ReloadRepository(ctx, true)
		return err
	}},
	{"LoadModel", func(s *stub, h func(context.Context) error) {
		s.loadModel = handle[pb.LoadModelRequest](h, &pb.LoadModelResponse{})
	}, func(ctx context.Context, c *client.Client) error {
		_, err := c.LoadModel(ctx, "classifier", 2)
		return err
	}},
	{"UnloadModel", func(s *stub, h func(context.Context) error) {
		s.unloadModel = handle[pb.UnloadModelRequest](h, &pb.UnloadModelResponse{})
	}, func(ctx context.Context, c *client.Client) error {
		return c.UnloadModel(ctx, "classifier", 2)
	}},
	{"SetVersionLabels", func(s *stub, h func(context.Context) error) {
		s.setLabels = handle[pb.SetVersionLabelsRequest](h, &pb.SetVersionLabelsResponse{})
	}, func(ctx context.Context, c *client.Client) error {
		_, err := c.SetVersionLabels(ctx, "classifier", map[string]int64{"stable": 2})
		return err
	}},
}

// ranThenUnavailable is an admin call whose first attempt did its work but whose
// answer was lost (UNAVAILABLE); a second attempt finds the work done, as a second
// UnloadModel finds the version gone.
func ranThenUnavailable() func(context.Context) error {
	var calls int
	return func(context.Context) error {
		if calls++; calls == 1 {
			return status.Error(codes.Unavailable, "connection lost after the call ran")
		}
		return status.Error(codes.NotFound, "version 2 of classifier is not loaded")
	}
}

// TestAdminCallsAreNotRetried: an admin call that fails with UNAVAILABLE is made once
// and reports UNAVAILABLE, since its first attempt may have run and a second would
// report a false error; ModelService's reads are still retried.
func TestAdminCallsAreNotRetried(t *testing.T) {
	for _, rpc := range adminRPCs {
		t.Run(rpc.name, func(t *testing.T) {
			n := serveStubs(t, nil, "127.0.0.1:1")
			s := n.stubs["127.0.0.1:1"]
			rpc.serve(s, ranThenUnavailable())
			err := rpc.call(context.Background(), newClient(t, n, "127.0.0.1:1"))
			if got := status.Code(err); got != codes.Unavailable || s.calls.Load() != 1 {
				t.Fatalf("got %v after %d attempts, want Unavailable after 1", err, s.calls.Load())
			}
		})
	}
	for _, rpc := range unaryRPCs {
		switch rpc.name {
		case "ListModels", "GetModel", "GetModelStatus":
		default:
			continue
		}
		t.Run(rpc.name, func(t *testing.T) {
			n := serveStubs(t, nil, "127.0.0.1:1")
			s := n.stubs["127.0.0.1:1"]
			rpc.serve(s, failing(1, codes.Unavailable))
			err := rpc.call(context.Background(), newClient(t, n, "127.0.0.1:1"))
			if err != nil || s.calls.Load() != 2 {
				t.Fatalf("got %v after %d attempts, want success after 2", err, s.calls.Load())
			}
		})
	}
}
