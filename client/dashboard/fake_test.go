package dashboard

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// fakeServer is a stand-in atelierd on a loopback port: every frame gets one "Dress"
// (full-body) in its middle, every tenth frame raises an alert on the camera's first
// rule, and every tenth frame a summary counts the frames seen. As atelierd, it
// refuses a stream whose rules name a category its models do not know
// (INVALID_ARGUMENT). It can be stopped and started again on the same port.
type fakeServer struct {
	pb.UnimplementedDetectServiceServer
	pb.UnimplementedAlertServiceServer
	pb.UnimplementedModelServiceServer

	addr string
	srv  *grpc.Server

	// ending makes DetectStream and WatchAlerts end at once, without an error.
	ending atomic.Bool
	// unlabelled makes ListModels leave out the models' labels (DetectStream still
	// checks the rules' categories against them).
	unlabelled atomic.Bool

	mu       sync.Mutex
	watchers map[chan *pb.Alert]bool
	configs  []*pb.DetectStreamConfig
}

func startFake(t *testing.T, addr string) *fakeServer {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	// A server brought back on its old port can find the port briefly taken: the
	// dashboard keeps dialing it, and a dial to a loopback port nobody listens on can
	// pick that very port as its own and connect to itself (TCP's simultaneous open),
	// until gRPC gives the odd connection up. Wait for it, as a restarted server would.
	for deadline := time.Now().Add(10 * time.Second); errors.Is(err, syscall.EADDRINUSE) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		ln, err = net.Listen("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{addr: ln.Addr().String(), srv: grpc.NewServer(), watchers: map[chan *pb.Alert]bool{}}
	pb.RegisterDetectServiceServer(f.srv, f)
	pb.RegisterAlertServiceServer(f.srv, f)
	pb.RegisterModelServiceServer(f.srv, f)
	healthpb.RegisterHealthServer(f.srv, health.NewServer())
	go f.srv.Serve(ln)
	t.Cleanup(f.srv.Stop)
	return f
}

// The fake's models and their labels, as the embedded ones.
var (
	fakeTypes      = []string{"top", "bottom", "full-body", "footwear", "bag"}
	fakeCategories = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
)

func (f *fakeServer) ListModels(context.Context, *pb.ListModelsRequest) (*pb.ListModelsResponse, error) {
	types, cats := fakeTypes, fakeCategories
	if f.unlabelled.Load() {
		types, cats = nil, nil
	}
	return &pb.ListModelsResponse{Models: []*pb.ModelInfo{
		{Name: "classifier", Role: pb.ModelRole_MODEL_ROLE_CLASSIFIER, Versions: []*pb.ModelVersion{{Version: 1, Labels: cats}}},
		{Name: "detector", Role: pb.ModelRole_MODEL_ROLE_DETECTOR, Versions: []*pb.ModelVersion{{Version: 1, Labels: types}}},
	}}, nil
}

func (f *fakeServer) DetectStream(s pb.DetectService_DetectStreamServer) error {
	first, err := s.Recv()
	if err != nil {
		return err
	}
	cfg := first.GetConfig()
	f.mu.Lock()
	f.configs = append(f.configs, cfg)
	f.mu.Unlock()
	for i, r := range cfg.GetOptions().GetAlertRules() {
		for _, c := range r.Categories {
			if !slices.Contains(fakeTypes, c) && !slices.Contains(fakeCategories, c) {
				return status.Errorf(codes.InvalidArgument, "alert rule %d (%q): no model of this stream names the category %q", i, r.Name, c)
			}
		}
	}
	if f.ending.Load() {
		return nil
	}
	var seen uint64
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		fr := m.GetFrame()
		seen++
		res := &pb.DetectFrameResult{FrameId: fr.FrameId, Detections: []*pb.Detection{{
			Box: &pb.BoundingBox{XMin: 10, YMin: 10, XMax: 50, YMax: 40}, GarmentType: "full-body", Score: 0.9,
			Classification: &pb.Classification{Predictions: []*pb.Prediction{{Label: "Dress", Score: 0.95}}},
		}}}
		if err := s.Send(&pb.DetectStreamResponse{Message: &pb.DetectStreamResponse_Result{Result: res}}); err != nil {
			return err
		}
		if fr.FrameId%10 == 0 {
			sum := &pb.TallySummary{CameraId: cfg.Options.CameraId, Frames: seen, Counts: []*pb.CategoryCount{{Label: "Dress", Count: seen}}}
			if err := s.Send(&pb.DetectStreamResponse{Message: &pb.DetectStreamResponse_Summary{Summary: sum}}); err != nil {
				return err
			}
			if rules := cfg.Options.AlertRules; len(rules) > 0 {
				f.publish(&pb.Alert{CameraId: cfg.Options.CameraId, Rule: rules[0].Name, Label: "Dress", Score: 0.95,
					FrameId: fr.FrameId, CaptureTime: fr.CaptureTime})
			}
		}
	}
}

func (f *fakeServer) publish(a *pb.Alert) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.watchers {
		select {
		case ch <- a:
		default:
		}
	}
}

func (f *fakeServer) WatchAlerts(req *pb.WatchAlertsRequest, s pb.AlertService_WatchAlertsServer) error {
	ch := make(chan *pb.Alert, 16)
	f.mu.Lock()
	f.watchers[ch] = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.watchers, ch)
		f.mu.Unlock()
	}()
	if err := s.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	if f.ending.Load() {
		return nil
	}
	for {
		select {
		case a := <-ch:
			if len(req.CameraIds) > 0 && !slices.Contains(req.CameraIds, a.CameraId) {
				continue // as atelierd: only the cameras asked for
			}
			if err := s.Send(&pb.WatchAlertsResponse{Alert: a}); err != nil {
				return err
			}
		case <-s.Context().Done():
			return nil
		}
	}
}

// streamConfigs returns the configs the streams opened with.
func (f *fakeServer) streamConfigs() []*pb.DetectStreamConfig {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*pb.DetectStreamConfig(nil), f.configs...)
}
