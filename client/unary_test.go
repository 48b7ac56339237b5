package client_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/client"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// failing returns a handler that fails with code for its first n calls.
func failing(n int64, code codes.Code) func(context.Context) error {
	var calls int64
	return func(context.Context) error {
		calls++
		if calls <= n {
			return status.Errorf(code, "attempt %d fails", calls)
		}
		return nil
	}
}

// handle returns a stub handler that runs h and answers resp when h returns nil.
func handle[Req, Resp any](h func(context.Context) error, resp *Resp) func(context.Context, *Req) (*Resp, error) {
	return func(ctx context.Context, _ *Req) (*Resp, error) {
		if err := h(ctx); err != nil {
			return nil, err
		}
		return resp, nil
	}
}

// rpcCase is one unary RPC: serve installs h as the stub's handler, call calls it.
type rpcCase struct {
	name  string
	serve func(s *stub, h func(context.Context) error)
	call  func(ctx context.Context, c *client.Client) error
}

var unaryRPCs = []rpcCase{
	{"Classify", func(s *stub, h func(context.Context) error) {
		s.classify = handle[pb.ClassifyRequest](h, &pb.ClassifyResponse{})
	}, func(ctx context.Context, c *client.Client) error {
		_, err := c.ClassifyImages(ctx, 1, client.ImageBytes([]byte("png")))
		return err
	}},
	{"Detect", func(s *stub, h func(context.Context) error) {
		s.detect = handle[pb.DetectRequest](h, &pb.DetectResponse{})
	}, func(ctx context.Context, c *client.Client) error {
		_, err := c.Detect(ctx, &pb.DetectRequest{})
		return err
	}},
	{"Generate", func(s *stub, h func(context.Context) error) {
		s.generate = handle[pb.GenerateRequest](h, &pb.GenerateResponse{})
	}, func(ctx context.Context, c *client.Client) error {
		_, err := c.Generate(ctx, &pb.GenerateRequest{Category: "Dress", Count: 1})
		return err
	}},
	{"ListModels", func(s *stub, h func(context.Context) error) {
		s.listModels = handle[pb.ListModelsRequest](h, &pb.ListModelsResponse{})
	}, func(ctx context.Context, c *client.Client) error {
		_, err := c.ListModels(ctx)
		return err
	}},
	{"GetModel", func(s *stub, h func(context.Context) error) {
		s.getModel = handle[pb.GetModelRequest](h, &pb.GetModelResponse{})
	}, func(ctx context.Context, c *client.Client) error {
		_, err := c.GetModel(ctx, "classifier", 0)
		return err
	}},
	{"GetModelStatus", func(s *stub, h func(context.Context) error) {
		s.modelStatus = handle[pb.GetModelStatusRequest](h, &pb.GetModelStatusResponse{})
	}, func(ctx context.Context, c *client.Client) error {
		_, err := c.ModelStatus(ctx, "classifier")
		return err
	}},
	{"Health", func(s *stub, h func(context.Context) error) {
		s.check = handle[healthpb.HealthCheckRequest](h, &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
	}, func(ctx context.Context, c *client.Client) error {
		_, err := c.Health(ctx, "")
		return err
	}},
}

// TestRetries checks the service config: every retryable RPC is retried on
// UNAVAILABLE up to the attempt limit, and never on any other code.
func TestRetries(t *testing.T) {
	cases := []struct {
		name         string
		failures     int64
		code         codes.Code
		opts         []client.Option
		wantAttempts int64
		wantCode     codes.Code
	}{
		{"unavailable twice then ok", 2, codes.Unavailable, nil, 3, codes.OK},
		{"unavailable four times then ok", 4, codes.Unavailable, nil, 5, codes.OK},
		{"unavailable past the limit", 5, codes.Unavailable, nil, 5, codes.Unavailable},
		{"invalid argument is final", 1, codes.InvalidArgument, nil, 1, codes.InvalidArgument},
		{"internal is final", 1, codes.Internal, nil, 1, codes.Internal},
		{"retries off", 1, codes.Unavailable, []client.Option{client.WithRetries(1)}, 1, codes.Unavailable},
		{"two attempts", 3, codes.Unavailable, []client.Option{client.WithRetries(2)}, 2, codes.Unavailable},
	}
	for _, rpc := range unaryRPCs {
		for _, tc := range cases {
			t.Run(rpc.name+"/"+tc.name, func(t *testing.T) {
				n := serveStubs(t, nil, "127.0.0.1:1")
				s := n.stubs["127.0.0.1:1"]
				rpc.serve(s, failing(tc.failures, tc.code))
				c := newClient(t, n, "127.0.0.1:1", tc.opts...)
				err := rpc.call(context.Background(), c)
				if got := status.Code(err); got != tc.wantCode {
					t.Fatalf("got code %v (%v), want %v", got, err, tc.wantCode)
				}
				if got := s.calls.Load(); got != tc.wantAttempts {
					t.Fatalf("got %d attempts, want %d", got, tc.wantAttempts)
				}
			})
		}
	}
}

// TestStreamsAreNotRetried: a stream that fails with UNAVAILABLE is tried once.
func TestStreamsAreNotRetried(t *testing.T) {
	n := serveStubs(t, nil, "127.0.0.1:1")
	s := n.stubs["127.0.0.1:1"]
	s.classifyStream = func(pb.ClassifyService_ClassifyStreamServer) error {
		return status.Error(codes.Unavailable, "down")
	}
	c := newClient(t, n, "127.0.0.1:1")
	err := c.ClassifyStream(context.Background(), &pb.ClassifyStreamConfig{}, nil,
		func(*pb.ClassifyStreamResponse) error { return nil })
	if status.Code(err) != codes.Unavailable || s.calls.Load() != 1 {
		t.Fatalf("got %v after %d attempts, want Unavailable after 1", err, s.calls.Load())
	}
}

// TestDeadlines: every unary call carries the client's deadline, or the context's
// when that is earlier.
func TestDeadlines(t *testing.T) {
	cases := []struct {
		name    string
		opts    []client.Option
		ctx     time.Duration // 0: no deadline on the caller's context
		want    time.Duration
		wantErr codes.Code
	}{
		{"default 30s", nil, 0, client.DefaultTimeout, codes.OK},
		{"WithTimeout 2s", []client.Option{client.WithTimeout(2 * time.Second)}, 0, 2 * time.Second, codes.OK},
		{"earlier context deadline wins", nil, 1 * time.Second, 1 * time.Second, codes.OK},
		{"later context deadline loses", []client.Option{client.WithTimeout(3 * time.Second)}, time.Hour, 3 * time.Second, codes.OK},
		{"slow server hits the deadline", []client.Option{client.WithTimeout(100 * time.Millisecond)}, 0, 100 * time.Millisecond, codes.DeadlineExceeded},
	}
	for _, rpc := range unaryRPCs {
		for _, tc := range cases {
			t.Run(rpc.name+"/"+tc.name, func(t *testing.T) {
				n := serveStubs(t, nil, "127.0.0.1:1")
				s := n.stubs["127.0.0.1:1"]
				// The handler reports what it saw on a channel: the client's return is
				// no happens-before edge, and on a deadline it may return first.
				seen := make(chan time.Duration, 1)
				slow := make(chan struct{}) // closed once the client has its answer
				defer close(slow)
				rpc.serve(s, func(ctx context.Context) error {
					dl, ok := ctx.Deadline()
					if !ok {
						t.Errorf("call has no deadline")
					}
					select {
					case seen <- time.Until(dl): // the first attempt's
					default:
					}
					if tc.wantErr == codes.DeadlineExceeded {
						// Outlast the client: the server's own deadline, taken from the
						// grpc-timeout header, can fire first, and an answer sent then
						// may reach the client before its deadline does.
						select {
						case <-slow:
						case <-time.After(10 * time.Second):
						}
					}
					return nil
				})
				c := newClient(t, n, "127.0.0.1:1", tc.opts...)
				ctx := context.Background()
				if tc.ctx > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.ctx)
					defer cancel()
				}
				err := rpc.call(ctx, c)
				if got := status.Code(err); got != tc.wantErr {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				var left time.Duration
				select {
				case left = <-seen:
				case <-time.After(10 * time.Second):
					t.Fatal("the call never reached the server")
				}
				if left > tc.want || left < tc.want-time.Second {
					t.Fatalf("server saw %v left, want about %v", left, tc.want)
				}
			})
		}
	}
}

// TestOneTokenPerCall checks a client with its own token sends it on every call, and
// sends only the AdminContext's token on a call that carries one: the server then sees
// one authorization header, the one the call was given.
func TestOneTokenPerCall(t *testing.T) {
	n := serveStubs(t, nil, "127.0.0.1:1")
	s := n.stubs["127.0.0.1:1"]
	seen := make(chan []string, 1)
	s.classify = func(ctx context.Context, _ *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		seen <- md.Get("authorization")
		return &pb.ClassifyResponse{}, nil
	}
	c := newClient(t, n, "127.0.0.1:1", client.WithToken("infer-token"))
	for _, tc := range []struct {
		ctx  context.Context
		want string
	}{
		{context.Background(), "Bearer infer-token"},
		{client.AdminContext(context.Background(), "admin-token"), "Bearer admin-token"},
	} {
		if _, err := c.Classify(tc.ctx, &pb.ClassifyRequest{}); err != nil {
			t.Fatal(err)
		}
		if got := <-seen; len(got) != 1 || got[0] != tc.want {
			t.Errorf("the server saw authorization %q, want only %q", got, tc.want)
		}
	}
}

// rateLimited returns a handler that refuses its first n calls as the server's rate
// limit does: RESOURCE_EXHAUSTED with a retry-after-ms trailer of wait (none if 0).
func rateLimited(n int64, wait time.Duration) func(context.Context) error {
	var calls int64
	return func(ctx context.Context) error {
		calls++
		if calls > n {
			return nil
		}
		if wait > 0 {
			grpc.SetTrailer(ctx, metadata.Pairs("retry-after", "1", "retry-after-ms", strconv.FormatInt(wait.Milliseconds(), 10)))
		}
		return status.Errorf(codes.ResourceExhausted, "rate limit exceeded; retry after %v", wait)
	}
}

// TestRetryAfter: a call the server's rate limit refuses with a retry-after trailer is
// tried again once that wait is over, as often as its deadline allows; a
// RESOURCE_EXHAUSTED without one (a full queue) is final, and WithRetries(1) turns
// the waiting off.
func TestRetryAfter(t *testing.T) {
	cases := []struct {
		name        string
		refusals    int64
		wait        time.Duration
		opts        []client.Option
		minAttempts int64
		maxAttempts int64
		wantCodes   []codes.Code
		wantAtLeast time.Duration // the call took at least this long
	}{
		{"refused twice, then served", 2, 30 * time.Millisecond, nil, 3, 3, []codes.Code{codes.OK}, 60 * time.Millisecond},
		{"refused more often than UNAVAILABLE is retried", 8, 5 * time.Millisecond, nil, 9, 9, []codes.Code{codes.OK}, 40 * time.Millisecond},
		// The last wait may end so near the deadline that the last try runs out of time.
		// A second of 20-24 ms waits is some 40 tries on an idle machine; 5 leaves room
		// for a loaded one (CI under -race) and still shows the tries go on to the end.
		{"refused until the deadline", 1000, 20 * time.Millisecond, []client.Option{client.WithTimeout(time.Second)}, 5, 50, []codes.Code{codes.ResourceExhausted, codes.DeadlineExceeded}, 500 * time.Millisecond},
		{"no retry-after is final", 1, 0, nil, 1, 1, []codes.Code{codes.ResourceExhausted}, 0},
		{"a wait past the deadline is final", 1, time.Minute, []client.Option{client.WithTimeout(200 * time.Millisecond)}, 1, 1, []codes.Code{codes.ResourceExhausted}, 0},
		{"retries off", 1, 5 * time.Millisecond, []client.Option{client.WithRetries(1)}, 1, 1, []codes.Code{codes.ResourceExhausted}, 0},
	}
	for _, rpc := range unaryRPCs {
		for _, tc := range cases {
			t.Run(rpc.name+"/"+tc.name, func(t *testing.T) {
				n := serveStubs(t, nil, "127.0.0.1:1")
				s := n.stubs["127.0.0.1:1"]
				rpc.serve(s, rateLimited(tc.refusals, tc.wait))
				c := newClient(t, n, "127.0.0.1:1", tc.opts...)
				start := time.Now()
				err := rpc.call(context.Background(), c)
				took := time.Since(start)
				if got := status.Code(err); !slices.Contains(tc.wantCodes, got) {
					t.Fatalf("got code %v (%v), want one of %v", got, err, tc.wantCodes)
				}
				if got := s.calls.Load(); got < tc.minAttempts || got > tc.maxAttempts {
					t.Fatalf("got %d attempts, want %d..%d", got, tc.minAttempts, tc.maxAttempts)
				}
				if took < tc.wantAtLeast || took > 5*time.Second {
					t.Fatalf("the call took %v, want at least %v (the server's waits) and no more than 5s", took, tc.wantAtLeast)
				}
			})
		}
	}
}
