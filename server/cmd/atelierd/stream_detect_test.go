package main

import (
	"errors"
	"io"
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// TestDetectStreamMatchesDetect streams held-out scenes through DetectStream: every
// frame is answered in order with the same garments as a unary Detect of the same
// scene, and the final tallies count each garment's fine category.
func TestDetectStreamMatchesDetect(t *testing.T) {
	client := startDetect(t)
	truth := heldOut(t, 8, "")
	n := len(truth.Scenes)
	want := make([]*pb.DetectResponse, n)
	s, err := client.DetectStream(ctxFor(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &pb.DetectStreamConfig{Options: &pb.StreamOptions{CameraId: "aisle", SummaryInterval: durationpb.New(time.Hour)}}
	if err := s.Send(&pb.DetectStreamRequest{Message: &pb.DetectStreamRequest_Config{Config: cfg}}); err != nil {
		t.Fatal(err)
	}
	tally := map[string]uint64{}
	for i := range n {
		img := encoded(readScene(t, truth, i))
		if want[i], err = client.Detect(ctxFor(t, time.Minute), &pb.DetectRequest{Image: img}); err != nil {
			t.Fatal(err)
		}
		for _, d := range want[i].Detections {
			tally[d.Classification.Predictions[0].Label]++
		}
		if err := s.Send(&pb.DetectStreamRequest{Message: &pb.DetectStreamRequest_Frame{Frame: &pb.StreamFrame{FrameId: uint64(i), Image: img}}}); err != nil {
			t.Fatal(err)
		}
	}
	s.CloseSend()
	var results []*pb.DetectFrameResult
	var summary *pb.TallySummary
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r := m.GetResult(); r != nil {
			results = append(results, r)
		}
		if m.GetSummary() != nil {
			summary = m.GetSummary()
		}
	}
	if len(results) != n {
		t.Fatalf("got %d results, want %d", len(results), n)
	}
	garments := 0
	for i, r := range results {
		if r.FrameId != uint64(i) || r.Error != nil || len(r.Detections) != len(want[i].Detections) {
			t.Fatalf("frame %d: got %v, want frame %d with %d garments as from Detect", i, r, i, len(want[i].Detections))
		}
		for j, d := range r.Detections {
			w := want[i].Detections[j]
			if d.GarmentType != w.GarmentType || d.Classification.Predictions[0].Label != w.Classification.Predictions[0].Label ||
				math.Abs(float64(d.Box.XMin-w.Box.XMin)) > 1e-3 || math.Abs(float64(d.Box.YMax-w.Box.YMax)) > 1e-3 {
				t.Fatalf("frame %d garment %d: got %v, want %v", i, j, d, w)
			}
		}
		garments += len(r.Detections)
	}
	if got := counts(summary); summary.GetFrames() != uint64(n) || len(got) != len(tally) {
		t.Fatalf("got tallies %v over %d frames, want %v over %d", got, summary.GetFrames(), tally, n)
	}
	for label, c := range tally {
		if counts(summary)[label] != c {
			t.Fatalf("got tallies %v, want %v", counts(summary), tally)
		}
	}
	t.Logf("%d scenes, %d garments, as from Detect; tallies %s", n, garments, sortedCounts(summary))
}
