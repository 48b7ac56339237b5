package server

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/atelier-vision/atelier/internal/batching"
	"github.com/atelier-vision/atelier/internal/classify"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/prep"
	"github.com/atelier-vision/atelier/internal/tensor"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// servePriorityClassifier serves the real classify core over a classifier whose
// engine, where the batcher sits in atelierd, records the batching priority of each
// run's context (priorityEngine, inference_errors_test.go).
func servePriorityClassifier(t *testing.T) (*grpc.ClientConn, chan batching.Priority) {
	t.Helper()
	eng := priorityEngine{seen: make(chan batching.Priority, 16)}
	m, err := models.NewModel(models.Spec{Name: "classifier", Version: 1}, "", eng, []tensor.Signature{{Name: models.ServingSignature,
		Inputs:  []tensor.Info{{Key: "images", DType: tensor.Uint8, Shape: []int64{-1, 28, 28, 1}}},
		Outputs: []tensor.Info{{Key: "probabilities", DType: tensor.Float32, Shape: []int64{-1, 10}}}}}, labels10)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := models.NewRepository(m)
	if err != nil {
		t.Fatal(err)
	}
	conn, _ := serve(t, Cores{Classifier: &classify.Classifier{Repo: repo, Prep: &prep.Preparer{Limits: imageio.DefaultLimits}}})
	return conn, eng.seen
}

// priorityCases are x-atelier-priority values ("" sends none) and the batching
// priority each must reach the model's engine with.
var priorityCases = []struct {
	header string
	want   batching.Priority
}{{"", batching.Normal}, {"low", batching.Low}, {"normal", batching.Normal}, {"high", batching.High}}

func withPriority(ctx context.Context, header string) context.Context {
	if header == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, PriorityHeader, header)
}

// TestClassifyPriorityReachesTheBatcher: a native Classify sent with
// x-atelier-priority runs at that priority where the batcher queues it.
func TestClassifyPriorityReachesTheBatcher(t *testing.T) {
	conn, seen := servePriorityClassifier(t)
	client := pb.NewClassifyServiceClient(conn)
	for _, tc := range priorityCases {
		t.Run("header "+tc.header, func(t *testing.T) {
			req := &pb.ClassifyRequest{Images: []*pb.Image{{Data: &pb.Image_Encoded{Encoded: pngOf(t, pixels(1))}}}}
			if _, err := client.Classify(withPriority(ctxT(t), tc.header), req); err != nil {
				t.Fatal(err)
			}
			if got := <-seen; got != tc.want {
				t.Fatalf("Classify ran at priority %v, want %v", got, tc.want)
			}
		})
	}
}

// TestClassifyStreamPriorityReachesTheBatcher: every frame of a ClassifyStream opened
// with x-atelier-priority runs at the stream's priority, though the frames are
// classified in the stream's own goroutines.
func TestClassifyStreamPriorityReachesTheBatcher(t *testing.T) {
	conn, seen := servePriorityClassifier(t)
	for _, tc := range priorityCases {
		t.Run("header "+tc.header, func(t *testing.T) {
			frames := make([]*pb.StreamFrame, 3)
			for i := range frames {
				frames[i] = &pb.StreamFrame{Image: &pb.Image{Data: &pb.Image_Encoded{Encoded: pngOf(t, pixels(i))}}}
			}
			got, err := classifyAll(withPriority(ctxT(t), tc.header), conn, &pb.ClassifyStreamConfig{}, frames)
			if err != nil {
				t.Fatal(err)
			}
			results := 0
			for _, m := range got {
				if m.GetResult() != nil {
					results++
				}
			}
			if results != len(frames) {
				t.Fatalf("%d results, want %d", results, len(frames))
			}
			for i := range frames {
				if p := <-seen; p != tc.want {
					t.Fatalf("frame %d ran at priority %v, want %v", i, p, tc.want)
				}
			}
		})
	}
}
