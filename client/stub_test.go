package client_test

import (
	"context"
	"crypto/tls"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/test/bufconn"

	"github.com/atelier-vision/atelier/client"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// stub is a fake Atelier server: each RPC calls its function field, and calls counts
// every call it receives (attempts, when the client retries).
type stub struct {
	pb.UnimplementedClassifyServiceServer
	pb.UnimplementedDetectServiceServer
	pb.UnimplementedGenerateServiceServer
	pb.UnimplementedModelServiceServer
	pb.UnimplementedAlertServiceServer
	healthpb.UnimplementedHealthServer

	classify       func(context.Context, *pb.ClassifyRequest) (*pb.ClassifyResponse, error)
	classifyStream func(pb.ClassifyService_ClassifyStreamServer) error
	detect         func(context.Context, *pb.DetectRequest) (*pb.DetectResponse, error)
	detectStream   func(pb.DetectService_DetectStreamServer) error
	generate       func(context.Context, *pb.GenerateRequest) (*pb.GenerateResponse, error)
	interpolate    func(*pb.InterpolateRequest, pb.GenerateService_InterpolateServer) error
	listModels     func(context.Context, *pb.ListModelsRequest) (*pb.ListModelsResponse, error)
	getModel       func(context.Context, *pb.GetModelRequest) (*pb.GetModelResponse, error)
	modelStatus    func(context.Context, *pb.GetModelStatusRequest) (*pb.GetModelStatusResponse, error)
	reload         func(context.Context, *pb.ReloadRepositoryRequest) (*pb.ReloadRepositoryResponse, error)
	loadModel      func(context.Context, *pb.LoadModelRequest) (*pb.LoadModelResponse, error)
	unloadModel    func(context.Context, *pb.UnloadModelRequest) (*pb.UnloadModelResponse, error)
	setLabels      func(context.Context, *pb.SetVersionLabelsRequest) (*pb.SetVersionLabelsResponse, error)
	watchAlerts    func(*pb.WatchAlertsRequest, pb.AlertService_WatchAlertsServer) error
	check          func(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error)

	calls      atomic.Int64
	notServing atomic.Bool // what Watch (client-side health checking) reports
}

func (s *stub) Classify(ctx context.Context, r *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
	s.calls.Add(1)
	return s.classify(ctx, r)
}
func (s *stub) ClassifyStream(st pb.ClassifyService_ClassifyStreamServer) error {
	s.calls.Add(1)
	return s.classifyStream(st)
}
func (s *stub) Detect(ctx context.Context, r *pb.DetectRequest) (*pb.DetectResponse, error) {
	s.calls.Add(1)
	return s.detect(ctx, r)
}
func (s *stub) DetectStream(st pb.DetectService_DetectStreamServer) error {
	s.calls.Add(1)
	return s.detectStream(st)
}
func (s *stub) Generate(ctx context.Context, r *pb.GenerateRequest) (*pb.GenerateResponse, error) {
	s.calls.Add(1)
	return s.generate(ctx, r)
}
func (s *stub) Interpolate(r *pb.InterpolateRequest, st pb.GenerateService_InterpolateServer) error {
	s.calls.Add(1)
	return s.interpolate(r, st)
}
func (s *stub) ListModels(ctx context.Context, r *pb.ListModelsRequest) (*pb.ListModelsResponse, error) {
	s.calls.Add(1)
	return s.listModels(ctx, r)
}
func (s *stub) GetModel(ctx context.Context, r *pb.GetModelRequest) (*pb.GetModelResponse, error) {
	s.calls.Add(1)
	return s.getModel(ctx, r)
}
func (s *stub) GetModelStatus(ctx context.Context, r *pb.GetModelStatusRequest) (*pb.GetModelStatusResponse, error) {
	s.calls.Add(1)
	return s.modelStatus(ctx, r)
}
func (s *stub) ReloadRepository(ctx context.Context, r *pb.ReloadRepositoryRequest) (*pb.ReloadRepositoryResponse, error) {
	s.calls.Add(1)
	return s.reload(ctx, r)
}
func (s *stub) LoadModel(ctx context.Context, r *pb.LoadModelRequest) (*pb.LoadModelResponse, error) {
	s.calls.Add(1)
	return s.loadModel(ctx, r)
}
func (s *stub) UnloadModel(ctx context.Context, r *pb.UnloadModelRequest) (*pb.UnloadModelResponse, error) {
	s.calls.Add(1)
	return s.unloadModel(ctx, r)
}
func (s *stub) SetVersionLabels(ctx context.Context, r *pb.SetVersionLabelsRequest) (*pb.SetVersionLabelsResponse, error) {
	s.calls.Add(1)
	return s.setLabels(ctx, r)
}
func (s *stub) WatchAlerts(r *pb.WatchAlertsRequest, st pb.AlertService_WatchAlertsServer) error {
	s.calls.Add(1)
	return s.watchAlerts(r, st)
}
func (s *stub) Check(ctx context.Context, r *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	s.calls.Add(1)
	return s.check(ctx, r)
}

// Watch streams the stub's health, SERVING unless notServing, until the client goes.
// It is not counted in calls: clients that health-check call it on their own.
func (s *stub) Watch(_ *healthpb.HealthCheckRequest, st healthpb.Health_WatchServer) error {
	last := healthpb.HealthCheckResponse_UNKNOWN
	for {
		now := healthpb.HealthCheckResponse_SERVING
		if s.notServing.Load() {
			now = healthpb.HealthCheckResponse_NOT_SERVING
		}
		if now != last {
			if err := st.Send(&healthpb.HealthCheckResponse{Status: now}); err != nil {
				return err
			}
			last = now
		}
		select {
		case <-st.Context().Done():
			return nil
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stubNet serves stubs on in-memory listeners, one per fake loopback address.
type stubNet struct {
	lis   map[string]*bufconn.Listener
	srv   map[string]*grpc.Server
	stubs map[string]*stub
}

// serveStubs starts one gRPC server per address (each "127.0.0.1:N"), optionally
// with TLS, and stops them when the test ends.
func serveStubs(t *testing.T, cert *tls.Certificate, addrs ...string) *stubNet {
	t.Helper()
	n := &stubNet{lis: map[string]*bufconn.Listener{}, srv: map[string]*grpc.Server{}, stubs: map[string]*stub{}}
	for _, a := range addrs {
		var opts []grpc.ServerOption
		if cert != nil {
			opts = append(opts, grpc.Creds(credentials.NewServerTLSFromCert(cert)))
		}
		s, st, lis := grpc.NewServer(opts...), &stub{}, bufconn.Listen(1<<20)
		pb.RegisterClassifyServiceServer(s, st)
		pb.RegisterDetectServiceServer(s, st)
		pb.RegisterGenerateServiceServer(s, st)
		pb.RegisterModelServiceServer(s, st)
		pb.RegisterAlertServiceServer(s, st)
		healthpb.RegisterHealthServer(s, st)
		go s.Serve(lis)
		n.lis[a], n.srv[a], n.stubs[a] = lis, s, st
		t.Cleanup(s.Stop)
	}
	return n
}

// dialer routes the client's connections to the in-memory listeners.
func (n *stubNet) dialer() client.Option {
	return client.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		lis, ok := n.lis[addr]
		if !ok {
			return nil, &net.OpError{Op: "dial", Net: "bufconn", Err: net.UnknownNetworkError(addr)}
		}
		return lis.DialContext(ctx)
	}))
}

// newClient connects to addrs (served by n) and closes the client when the test ends.
func newClient(t *testing.T, n *stubNet, addrs string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(addrs, append([]client.Option{n.dialer()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// noLeaks fails the test if it leaves goroutines behind; call it first so that its
// check runs after every other cleanup.
func noLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines leaked:\n%s", n-before, buf[:runtime.Stack(buf, true)])
		}
	})
}
