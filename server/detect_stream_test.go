package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/atelier-vision/atelier/internal/classify"
	"github.com/atelier-vision/atelier/internal/detect"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/stream"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// fakeDetector finds a dress and a bag in every frame whose raw width is 2, nothing
// in other frames, refuses frames 1 pixel wide, and knows no model named "missing".
type fakeDetector struct{}

func (fakeDetector) Detect(_ context.Context, req detect.Request) (detect.Result, error) {
	if req.Model.Name == "missing" {
		return detect.Result{}, fmt.Errorf("%w: no model named %q", models.ErrNotFound, req.Model.Name)
	}
	switch req.Image.Frame.Width {
	case 1:
		return detect.Result{}, fmt.Errorf("%w: too narrow", imageio.ErrInvalidImage)
	case 2:
		return detect.Result{Detections: []detect.Detection{
			{Type: "full-body", Score: 0.9, Classification: []classify.Prediction{{Label: "Dress", Index: 3, Score: 0.8}}},
			{Type: "bag", Score: 0.7},
		}}, nil
	}
	return detect.Result{}, nil
}

func (fakeDetector) Labels(req detect.Request) (map[string][]string, error) {
	labels := map[string][]string{"detector:1": {"top", "bottom", "full-body", "footwear", "bag"}}
	if !req.SkipClassification {
		labels["classifier:1"] = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
	}
	return labels, nil
}

// dialDetect serves the fake detect core and the alert hub.
func dialDetect(t *testing.T, hub *stream.Hub) *grpc.ClientConn {
	conn, _ := serve(t, Cores{Detector: fakeDetector{}, Alerts: hub})
	return conn
}

func frameOfWidth(id uint64, w int) *pb.DetectStreamRequest {
	img := &pb.Image{Data: &pb.Image_Raw{Raw: &pb.RawImage{Rgb: make([]byte, w*3), Width: uint32(w), Height: 1}}}
	return &pb.DetectStreamRequest{Message: &pb.DetectStreamRequest_Frame{Frame: &pb.StreamFrame{FrameId: id, Image: img}}}
}

// detectStream sends msgs then closes, and returns every message and the end status.
func detectStream(t *testing.T, conn *grpc.ClientConn, msgs ...*pb.DetectStreamRequest) ([]*pb.DetectStreamResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := pb.NewDetectServiceClient(conn).DetectStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if s.Send(m) != nil {
			break
		}
	}
	s.CloseSend()
	var out []*pb.DetectStreamResponse
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

func TestDetectStream(t *testing.T) {
	hub := stream.NewHub(0)
	conn := dialDetect(t, hub)
	sub := hub.Subscribe(stream.Filter{})
	defer sub.Close()
	config := &pb.DetectStreamRequest{Message: &pb.DetectStreamRequest_Config{Config: &pb.DetectStreamConfig{
		Options: &pb.StreamOptions{CameraId: "till", SummaryInterval: durationpb.New(time.Hour), AlertRules: []*pb.AlertRule{
			{Name: "dress", Categories: []string{"Dress"}, MinScore: 0.75, MinConsecutiveFrames: 2},
			{Name: "bags", Categories: []string{"bag"}, MinScore: 0.5},
		}}}}}
	// Frames 1-3 show a dress and a bag, 4 nothing, 5 is refused, 6 shows them again.
	got, err := detectStream(t, conn, config, frameOfWidth(1, 2), frameOfWidth(2, 2), frameOfWidth(3, 2),
		frameOfWidth(4, 3), frameOfWidth(5, 1), frameOfWidth(6, 2))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, m := range got {
		switch x := m.Message.(type) {
		case *pb.DetectStreamResponse_Result:
			r := x.Result
			line := fmt.Sprintf("frame %d: %d garments", r.FrameId, len(r.Detections))
			if r.Error != nil {
				line = fmt.Sprintf("frame %d: %v", r.FrameId, codes.Code(r.Error.Code))
			}
			lines = append(lines, line)
		case *pb.DetectStreamResponse_Alert:
			lines = append(lines, fmt.Sprintf("alert %s %s frame %d", x.Alert.Rule, x.Alert.Label, x.Alert.FrameId))
		case *pb.DetectStreamResponse_Summary:
			line := fmt.Sprintf("summary %d frames", x.Summary.Frames)
			for _, c := range x.Summary.Counts {
				line += fmt.Sprintf(" %s=%d", c.Label, c.Count)
			}
			lines = append(lines, line)
		}
	}
	want := []string{
		"frame 1: 2 garments", "alert bags bag frame 1",
		"frame 2: 2 garments", "alert dress Dress frame 2",
		"frame 3: 2 garments", "frame 4: 0 garments", "frame 5: InvalidArgument",
		"frame 6: 2 garments", "alert bags bag frame 6",
		"summary 5 frames Dress=4 bag=4",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if n := len(sub.Alerts()); n != 3 {
		t.Fatalf("the hub got %d alerts, want 3", n)
	}
	if d := got[0].GetResult().Detections[0]; d.Classification.Predictions[0].Label != "Dress" || d.GarmentType != "full-body" {
		t.Fatalf("got detection %v, want a full-body classified as Dress", d)
	}
}

func TestDetectStreamEnds(t *testing.T) {
	conn := dialDetect(t, stream.NewHub(0))
	config := func(c *pb.DetectStreamConfig) *pb.DetectStreamRequest {
		return &pb.DetectStreamRequest{Message: &pb.DetectStreamRequest_Config{Config: c}}
	}
	cases := []struct {
		name    string
		msgs    []*pb.DetectStreamRequest
		code    codes.Code
		message string
	}{
		{"frame first", []*pb.DetectStreamRequest{frameOfWidth(1, 2)}, codes.InvalidArgument, "first message"},
		{"min_score above 1", []*pb.DetectStreamRequest{config(&pb.DetectStreamConfig{MinScore: proto.Float32(2)})}, codes.InvalidArgument, "min_score"},
		{"max_detections zero", []*pb.DetectStreamRequest{config(&pb.DetectStreamConfig{MaxDetections: proto.Int32(0)})}, codes.InvalidArgument, "max_detections"},
		{"unknown tiling", []*pb.DetectStreamRequest{config(&pb.DetectStreamConfig{Tiling: pb.Tiling(-1)})}, codes.InvalidArgument, "unknown tiling -1"},
		{"bad options", []*pb.DetectStreamRequest{config(&pb.DetectStreamConfig{Options: &pb.StreamOptions{QueueSize: 100}})}, codes.InvalidArgument, "queue_size"},
		{"unknown model", []*pb.DetectStreamRequest{config(&pb.DetectStreamConfig{Model: &pb.ModelSpec{Name: "missing"}}), frameOfWidth(1, 2)}, codes.NotFound, "missing"},
		// A spec no version can match ends the stream at its config, rather than
		// failing every frame alike.
		{"version and label", []*pb.DetectStreamRequest{config(&pb.DetectStreamConfig{Model: &pb.ModelSpec{Version: 1, VersionLabel: "stable"}}), frameOfWidth(1, 2)},
			codes.InvalidArgument, "set model.version or model.version_label, not both"},
		{"negative classifier version", []*pb.DetectStreamRequest{config(&pb.DetectStreamConfig{Classifier: &pb.ModelSpec{Version: -1}}), frameOfWidth(1, 2)},
			codes.InvalidArgument, "classifier.version -1 is negative"},
		{"camera id too long", []*pb.DetectStreamRequest{config(&pb.DetectStreamConfig{Options: &pb.StreamOptions{CameraId: strings.Repeat("c", 300)}})},
			codes.InvalidArgument, "camera_id of 300 bytes is over the limit of 256"},
		{"config twice", []*pb.DetectStreamRequest{config(&pb.DetectStreamConfig{}), config(&pb.DetectStreamConfig{})}, codes.InvalidArgument, "not a frame"},
		{"just a config", []*pb.DetectStreamRequest{config(&pb.DetectStreamConfig{})}, codes.OK, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := detectStream(t, conn, tc.msgs...)
			if st := status.Convert(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.message) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.code, tc.message)
			}
		})
	}
}
