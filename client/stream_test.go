package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/client"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// echoClassify answers every frame with a result carrying its id, sends a summary
// after every second frame, and fails with failCode after failAfter frames (if set).
func echoClassify(failAfter int, failCode codes.Code, gotConfig **pb.ClassifyStreamConfig) func(pb.ClassifyService_ClassifyStreamServer) error {
	return func(s pb.ClassifyService_ClassifyStreamServer) error {
		first, err := s.Recv()
		if err != nil {
			return err
		}
		if first.GetConfig() == nil {
			return status.Error(codes.InvalidArgument, "config must come first")
		}
		*gotConfig = first.GetConfig()
		for n := 1; ; n++ {
			m, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if failAfter > 0 && n > failAfter {
				return status.Error(failCode, "frame refused")
			}
			id := m.GetFrame().GetFrameId()
			res := &pb.ClassifyFrameResult{FrameId: id, Classification: &pb.Classification{
				Predictions: []*pb.Prediction{{Label: fmt.Sprint("frame ", id)}}}}
			if err := s.Send(&pb.ClassifyStreamResponse{Message: &pb.ClassifyStreamResponse_Result{Result: res}}); err != nil {
				return err
			}
			if n%2 == 0 {
				sum := &pb.TallySummary{CameraId: (*gotConfig).GetOptions().GetCameraId(), Frames: uint64(n)}
				if err := s.Send(&pb.ClassifyStreamResponse{Message: &pb.ClassifyStreamResponse_Summary{Summary: sum}}); err != nil {
					return err
				}
			}
		}
	}
}

// frames yields n frames (n < 0: without end) of a tiny raw image.
func frames(n int) iter.Seq[*pb.StreamFrame] {
	return client.Frames(func(yield func(*pb.Image) bool) {
		for i := 0; n < 0 || i < n; i++ {
			if !yield(&pb.Image{Data: &pb.Image_Raw{Raw: &pb.RawImage{Rgb: []byte{1, 2, 3}, Width: 1, Height: 1}}}) {
				return
			}
		}
	})
}

var errStop = errors.New("seen enough")

func TestClassifyStream(t *testing.T) {
	cases := []struct {
		name        string
		frames      int
		failAfter   int
		stopAt      int // the callback returns errStop at this result (0: never)
		cancelAt    int // the caller cancels at this result (0: never)
		wantResults int // results seen, ids 1..wantResults in order
		wantSums    int // summaries seen
		wantErr     any // nil, errStop or a codes.Code
	}{
		{"every frame answered in order", 7, 0, 0, 0, 7, 3, nil},
		{"no frames", 0, 0, 0, 0, 0, 0, nil},
		{"one frame", 1, 0, 0, 0, 1, 0, nil},
		{"server fails mid-stream", 10, 4, 0, 0, 4, 2, codes.ResourceExhausted},
		{"callback stops an endless stream", -1, 0, 5, 0, 5, 2, errStop},
		{"caller cancels an endless stream", -1, 0, 0, 6, 6, 3, codes.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			n := serveStubs(t, nil, "127.0.0.1:1")
			var cfg *pb.ClassifyStreamConfig
			n.stubs["127.0.0.1:1"].classifyStream = echoClassify(tc.failAfter, codes.ResourceExhausted, &cfg)
			c := newClient(t, n, "127.0.0.1:1")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			topK := int32(3)
			results, sums := 0, 0
			err := c.ClassifyStream(ctx, &pb.ClassifyStreamConfig{TopK: &topK, Options: &pb.StreamOptions{CameraId: "door"}},
				frames(tc.frames), func(m *pb.ClassifyStreamResponse) error {
					if s := m.GetSummary(); s != nil {
						sums++
						if s.CameraId != "door" {
							t.Errorf("summary camera %q, want door", s.CameraId)
						}
						return nil
					}
					results++
					if got := m.GetResult().GetFrameId(); got != uint64(results) {
						t.Errorf("result %d has frame id %d", results, got)
					}
					if results == tc.cancelAt {
						cancel()
					}
					if results == tc.stopAt {
						return errStop
					}
					return nil
				})
			switch want := tc.wantErr.(type) {
			case nil:
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
			case error:
				if !errors.Is(err, want) {
					t.Fatalf("got %v, want %v", err, want)
				}
			case codes.Code:
				if status.Code(err) != want {
					t.Fatalf("got %v, want code %v", err, want)
				}
			}
			if tc.cancelAt == 0 && (results != tc.wantResults || sums != tc.wantSums) {
				t.Fatalf("got %d results and %d summaries, want %d and %d", results, sums, tc.wantResults, tc.wantSums)
			}
			if tc.cancelAt != 0 && results < tc.wantResults {
				t.Fatalf("got %d results, want at least %d", results, tc.wantResults)
			}
			if cfg.GetTopK() != 3 || cfg.GetOptions().GetCameraId() != "door" {
				t.Fatalf("server got config %v, want top_k 3 and camera door", cfg)
			}
		})
	}
}

func TestDetectStream(t *testing.T) {
	noLeaks(t)
	n := serveStubs(t, nil, "127.0.0.1:1")
	n.stubs["127.0.0.1:1"].detectStream = func(s pb.DetectService_DetectStreamServer) error {
		if first, err := s.Recv(); err != nil || first.GetConfig() == nil {
			return status.Errorf(codes.InvalidArgument, "config must come first (%v)", err)
		}
		for {
			m, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			res := &pb.DetectFrameResult{FrameId: m.GetFrame().GetFrameId(), Detections: []*pb.Detection{{GarmentType: "top"}}}
			if err := s.Send(&pb.DetectStreamResponse{Message: &pb.DetectStreamResponse_Result{Result: res}}); err != nil {
				return err
			}
		}
	}
	c := newClient(t, n, "127.0.0.1:1")
	var ids []uint64
	err := c.DetectStream(context.Background(), &pb.DetectStreamConfig{}, frames(4), func(m *pb.DetectStreamResponse) error {
		ids = append(ids, m.GetResult().GetFrameId())
		return nil
	})
	if err != nil || fmt.Sprint(ids) != "[1 2 3 4]" {
		t.Fatalf("got ids %v, err %v; want [1 2 3 4], nil", ids, err)
	}
}

func TestInterpolate(t *testing.T) {
	noLeaks(t)
	n := serveStubs(t, nil, "127.0.0.1:1")
	n.stubs["127.0.0.1:1"].interpolate = func(r *pb.InterpolateRequest, s pb.GenerateService_InterpolateServer) error {
		for i := range r.Steps {
			t := float32(i) / float32(r.Steps-1)
			if err := s.Send(&pb.InterpolateResponse{Step: i, T: t}); err != nil {
				return err
			}
		}
		return nil
	}
	c := newClient(t, n, "127.0.0.1:1")
	var ts []float32
	err := c.Interpolate(context.Background(), &pb.InterpolateRequest{Category: "Dress", Steps: 5},
		func(m *pb.InterpolateResponse) error { ts = append(ts, m.T); return nil })
	if err != nil || fmt.Sprint(ts) != "[0 0.25 0.5 0.75 1]" {
		t.Fatalf("got t %v, err %v; want [0 0.25 0.5 0.75 1], nil", ts, err)
	}
}

func TestWatchAlerts(t *testing.T) {
	noLeaks(t)
	n := serveStubs(t, nil, "127.0.0.1:1")
	n.stubs["127.0.0.1:1"].watchAlerts = func(r *pb.WatchAlertsRequest, s pb.AlertService_WatchAlertsServer) error {
		if err := s.SendHeader(nil); err != nil {
			return err
		}
		for i := range 3 {
			a := &pb.Alert{CameraId: r.CameraIds[0], Rule: "dresses", FrameId: uint64(i + 1)}
			if err := s.Send(&pb.WatchAlertsResponse{Alert: a}); err != nil {
				return err
			}
		}
		<-s.Context().Done() // alerts never end by themselves
		return nil
	}
	c := newClient(t, n, "127.0.0.1:1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []string
	ready := false
	err := c.WatchAlerts(ctx, &pb.WatchAlertsRequest{CameraIds: []string{"door"}}, func() { ready = true }, func(a *pb.Alert) error {
		if !ready {
			t.Error("an alert arrived before ready was called")
		}
		got = append(got, fmt.Sprintf("%s/%s/%d", a.CameraId, a.Rule, a.FrameId))
		if len(got) == 3 {
			cancel()
		}
		return nil
	})
	if status.Code(err) != codes.Canceled || fmt.Sprint(got) != "[door/dresses/1 door/dresses/2 door/dresses/3]" {
		t.Fatalf("got %v, %v; want 3 alerts from door, then Canceled", got, err)
	}
}
