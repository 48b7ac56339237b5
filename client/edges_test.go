package client_test

// The library against a broken or hostile server: retry-after trailers out of any
// sensible range, answers over the size limit, a server that never answers, a
// connection cut mid-stream, a DNS name with no address or a thousand.

import (
	"context"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
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

// refuseWith answers every call RESOURCE_EXHAUSTED with the trailer kv (key, value).
func refuseWith(kv ...string) func(context.Context, *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
	return func(ctx context.Context, _ *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
		grpc.SetTrailer(ctx, metadata.Pairs(kv...))
		return nil, status.Error(codes.ResourceExhausted, "rate limit exceeded")
	}
}

// TestEdgeRetryAfterOutOfRange: a retry-after no client should honour (past 11.5
// days, negative, not a number) makes the refusal final at once; before, a
// retry-after-ms past 292 years overflowed into a 10 ms wait, and the call was made
// again every 10 ms until its deadline.
func TestEdgeRetryAfterOutOfRange(t *testing.T) {
	cases := []struct{ key, value string }{
		{"retry-after-ms", strconv.FormatInt(math.MaxInt64, 10)},
		{"retry-after-ms", "9300000000000"}, // just past what a Duration holds in ms
		{"retry-after-ms", "315360000000"},  // 10 years
		{"retry-after-ms", "1000000000"},    // 11.5 days, as retry-after's bound
		{"retry-after-ms", "-5"},
		{"retry-after-ms", "soon"},
		{"retry-after", "1e400"},
		{"retry-after", "Inf"},
		{"retry-after", "NaN"},
		{"retry-after", "-1"},
	}
	for _, tc := range cases {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			n := serveStubs(t, nil, "127.0.0.1:1")
			s := n.stubs["127.0.0.1:1"]
			s.classify = refuseWith(tc.key, tc.value)
			// A deadline far off: the trailer alone must end the call.
			c := newClient(t, n, "127.0.0.1:1", client.WithTimeout(time.Hour))
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			start := time.Now()
			_, err := c.ClassifyImages(ctx, 1, client.ImageBytes([]byte{1}))
			if status.Code(err) != codes.ResourceExhausted || s.calls.Load() != 1 || time.Since(start) > time.Second {
				t.Fatalf("got %v after %d calls in %v, want RESOURCE_EXHAUSTED after one call at once", err, s.calls.Load(), time.Since(start))
			}
		})
	}
}

// TestEdgeCancelDuringWaits: cancelling a call while it waits out a retry-after or
// the backoff between UNAVAILABLE attempts ends it at once.
func TestEdgeCancelDuringWaits(t *testing.T) {
	cases := []struct {
		name     string
		classify func(context.Context, *pb.ClassifyRequest) (*pb.ClassifyResponse, error)
	}{
		{"retry-after of 10s", refuseWith("retry-after-ms", "10000")},
		{"UNAVAILABLE backoff", func(context.Context, *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
			return nil, status.Error(codes.Unavailable, "draining")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			n := serveStubs(t, nil, "127.0.0.1:1")
			n.stubs["127.0.0.1:1"].classify = tc.classify
			c := newClient(t, n, "127.0.0.1:1")
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(30*time.Millisecond, cancel) // within the first wait
			start := time.Now()
			_, err := c.ClassifyImages(ctx, 1, client.ImageBytes([]byte{1}))
			if took := time.Since(start); err == nil || took > 500*time.Millisecond {
				t.Fatalf("got %v after %v, want an error soon after the cancel at 30ms", err, took)
			}
		})
	}
}

// TestEdgeAnswerOverTheLimit: an answer larger than the client's message limit is
// refused from its length prefix, RESOURCE_EXHAUSTED, not buffered whole.
func TestEdgeAnswerOverTheLimit(t *testing.T) {
	cases := []struct {
		name  string
		opts  []client.Option
		label int // bytes of the one label the server sends
	}{
		{"WithMaxMessageBytes(1 MiB)", []client.Option{client.WithMaxMessageBytes(1 << 20)}, 2 << 20},
		{"the default 64 MiB", nil, 65 << 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			huge := strings.Repeat("x", tc.label)
			n := serveStubs(t, nil, "127.0.0.1:1")
			n.stubs["127.0.0.1:1"].classify = func(context.Context, *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
				return &pb.ClassifyResponse{Classifications: []*pb.Classification{{Predictions: []*pb.Prediction{{Label: huge}}}}}, nil
			}
			c := newClient(t, n, "127.0.0.1:1", tc.opts...)
			_, err := c.ClassifyImages(context.Background(), 1, client.ImageBytes([]byte{1}))
			if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "larger than max") {
				t.Fatalf("got %v, want RESOURCE_EXHAUSTED: received message larger than max", err)
			}
		})
	}
}

// silentServer accepts TCP connections and never says a word: a hung process, or a
// port that is not gRPC.
func silentServer(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return lis.Addr().String()
}

// TestEdgeServerNeverAnswers: calls to a server that never answers end at their
// deadline, streams at theirs or when their context is cancelled, and leave no
// goroutine behind.
func TestEdgeServerNeverAnswers(t *testing.T) {
	noLeaks(t)
	addr := silentServer(t)
	c, err := client.New(addr, client.WithTimeout(300*time.Millisecond), client.WithStreamTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Health(context.Background(), ""); status.Code(err) != codes.DeadlineExceeded || time.Since(start) > 2*time.Second {
		t.Errorf("Health: %v after %v, want DEADLINE_EXCEEDED after 300ms", err, time.Since(start))
	}
	start = time.Now()
	err = c.ClassifyStream(context.Background(), &pb.ClassifyStreamConfig{}, frames(-1), func(*pb.ClassifyStreamResponse) error { return nil })
	if status.Code(err) != codes.DeadlineExceeded || time.Since(start) > 2*time.Second {
		t.Errorf("ClassifyStream: %v after %v, want DEADLINE_EXCEEDED after 300ms", err, time.Since(start))
	}

	// Without a stream deadline, the caller's cancel ends it.
	c2, err := client.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	err = c2.ClassifyStream(ctx, &pb.ClassifyStreamConfig{}, frames(-1), func(*pb.ClassifyStreamResponse) error { return nil })
	if err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("ClassifyStream without a deadline: %v after %v, want an error when ctx ends at 300ms", err, time.Since(start))
	}
}

// TestEdgeConnectionCutMidStream: a server that goes away mid-stream ends the
// stream UNAVAILABLE, with its sending goroutine gone.
func TestEdgeConnectionCutMidStream(t *testing.T) {
	noLeaks(t)
	n := serveStubs(t, nil, "127.0.0.1:1")
	n.stubs["127.0.0.1:1"].classifyStream = func(st pb.ClassifyService_ClassifyStreamServer) error {
		st.Recv() // the config
		m, _ := st.Recv()
		st.Send(&pb.ClassifyStreamResponse{Message: &pb.ClassifyStreamResponse_Result{Result: &pb.ClassifyFrameResult{FrameId: m.GetFrame().GetFrameId()}}})
		time.Sleep(20 * time.Millisecond)
		go n.srv["127.0.0.1:1"].Stop() // every connection closed, as by a crash
		<-st.Context().Done()
		return nil
	}
	c := newClient(t, n, "127.0.0.1:1")
	got := 0
	err := c.ClassifyStream(context.Background(), &pb.ClassifyStreamConfig{}, frames(-1), func(*pb.ClassifyStreamResponse) error {
		got++
		return nil
	})
	if status.Code(err) != codes.Unavailable || got != 1 {
		t.Fatalf("got %v after %d results, want UNAVAILABLE after 1", err, got)
	}
}

// serveTCP serves a stub on a real loopback port (a dns: target dials IP addresses).
func serveTCP(t *testing.T, s *stub) (host string, port string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	pb.RegisterClassifyServiceServer(g, s)
	healthpb.RegisterHealthServer(g, s)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	host, port, _ = net.SplitHostPort(lis.Addr().String())
	return host, port
}

// TestEdgeDNSNoAddressOrAThousand: a dns: name with no address fails calls at once
// with UNAVAILABLE naming the lookup, not at the deadline; a name with 1,000
// addresses, one of them serving, gets its calls answered, and Close leaves nothing
// running.
func TestEdgeDNSNoAddressOrAThousand(t *testing.T) {
	noLeaks(t)

	t.Run("no address", func(t *testing.T) {
		server := client.EdgeDNS(t, "gone.test") // NXDOMAIN
		c, err := client.New("dns://"+server+"/gone.test:8500", client.WithInsecure(), client.WithTimeout(20*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		_, err = c.ClassifyImages(context.Background(), 1, client.ImageBytes([]byte{1}))
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "looking up gone.test") || time.Since(start) > 5*time.Second {
			t.Fatalf("got %v after %v, want UNAVAILABLE naming the lookup within 5s", err, time.Since(start))
		}
	})

	t.Run("a thousand addresses", func(t *testing.T) {
		s := &stub{classify: func(context.Context, *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
			return &pb.ClassifyResponse{Classifications: []*pb.Classification{{}}}, nil
		}}
		host, port := serveTCP(t, s)
		addrs := []netip.Addr{netip.MustParseAddr(host)}
		for i := range 999 { // 127.1.x.y: loopback, but no server there, so refused
			addrs = append(addrs, netip.AddrFrom4([4]byte{127, 1, byte(i / 250), byte(1 + i%250)}))
		}
		server := client.EdgeDNS(t, "many.test", addrs...)
		c, err := client.New("dns://"+server+"/many.test:"+port, client.WithInsecure(), client.WithTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		for i := range 20 {
			if _, err := c.ClassifyImages(context.Background(), 1, client.ImageBytes([]byte{1})); err != nil {
				t.Fatalf("call %d after %v: %v", i, time.Since(start), err)
			}
		}
		if got := s.calls.Load(); got != 20 {
			t.Errorf("the serving address got %d calls, want 20", got)
		}
		t.Logf("20 calls over 1,000 addresses (1 serving) in %v", time.Since(start).Round(time.Millisecond))
	})
}
