package main

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

// TestBadGeneratorLabelsHarmNoOneElse drives the real generator through the Open
// Inference Protocol with a category index past its table beside native Generate
// calls and good V2 calls that share its batches. The bad request is refused naming
// `labels` and the limit, without TensorFlow's text; every other call is answered (a
// bad row in a shared batch used to fail 113 of 120 native calls beside it).
func TestBadGeneratorLabelsHarmNoOneElse(t *testing.T) {
	conn := startGenerator(t)
	v2 := oip.NewGRPCInferenceServiceClient(conn)
	native := pb.NewGenerateServiceClient(conn)
	ctx := ctxFor(t, 3*time.Minute)
	md, err := v2.ModelMetadata(ctx, &oip.ModelMetadataRequest{Name: "generator"})
	if err != nil {
		t.Fatal(err)
	}
	var zSize int64
	for _, in := range md.Inputs {
		if in.Name == "z" {
			zSize = in.Shape[1]
		}
	}
	infer := func(label int32) error {
		z := make([]float32, zSize)
		_, err := v2.ModelInfer(ctx, &oip.ModelInferRequest{ModelName: "generator",
			Inputs: []*oip.ModelInferRequest_InferInputTensor{
				{Name: "z", Datatype: "FP32", Shape: []int64{1, zSize}, Contents: &oip.InferTensorContents{Fp32Contents: z}},
				{Name: "labels", Datatype: "INT32", Shape: []int64{1}, Contents: &oip.InferTensorContents{IntContents: []int32{label}}}}})
		return err
	}
	for _, bad := range []int32{99, 10, -1} {
		err := infer(bad)
		msg := status.Convert(err).Message()
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(msg, `input "labels"`) || !strings.Contains(msg, "0 to 9") {
			t.Fatalf("labels %d: got %v, want INVALID_ARGUMENT naming labels and 0 to 9", bad, err)
		}
		if strings.Contains(msg, "savedmodels") || strings.Contains(msg, "node") {
			t.Errorf("labels %d: the message shows the server's insides: %q", bad, msg)
		}
	}
	var wg sync.WaitGroup
	var nativeFailed, goodFailed, badPassed atomic.Int64
	for w := range 3 {
		wg.Go(func() {
			for i := range 20 {
				if _, err := native.Generate(ctx, &pb.GenerateRequest{Category: "Dress", Count: 1, Seed: uint64(w*100 + i)}); err != nil {
					nativeFailed.Add(1)
					t.Logf("native Generate: %v", err)
				}
				if err := infer(int32(i % 10)); err != nil {
					goodFailed.Add(1)
					t.Logf("good V2 call: %v", err)
				}
				if infer(99) == nil {
					badPassed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if nativeFailed.Load()+goodFailed.Load()+badPassed.Load() != 0 {
		t.Fatalf("beside bad labels: %d of 60 native calls and %d of 60 good V2 calls failed, %d bad calls passed",
			nativeFailed.Load(), goodFailed.Load(), badPassed.Load())
	}
}
