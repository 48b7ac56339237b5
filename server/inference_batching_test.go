package server

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/atelier-vision/atelier/internal/batching"
	"github.com/atelier-vision/atelier/internal/classify"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/inference"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/prep"
	"github.com/atelier-vision/atelier/internal/tensor"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

// runRecorder is fakeEngine that records each session run's rows.
type runRecorder struct {
	fakeEngine
	mu   sync.Mutex
	runs []int64
}

func (r *runRecorder) Run(ctx context.Context, sig string, in map[string]*tensor.Tensor, out []string) (map[string]*tensor.Tensor, error) {
	r.mu.Lock()
	r.runs = append(r.runs, in["images"].Shape[0])
	r.mu.Unlock()
	return r.fakeEngine.Run(ctx, sig, in, out)
}

// TestOpenInferenceSharesBatchesWithClassify: a V2 ModelInfer on the tensor model, one
// on the image model and a native Classify, sent together to one model behind the
// batcher, run as one session run of three rows, and each gets its own answer.
func TestOpenInferenceSharesBatchesWithClassify(t *testing.T) {
	rec := &runRecorder{}
	eng, err := batching.New(rec, batching.Config{MaxBatch: 3, MaxDelay: 5 * time.Second, QueueSize: 16, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	repo, err := models.NewRepository(classifierModel(t, eng, 1))
	if err != nil {
		t.Fatal(err)
	}
	p := &prep.Preparer{Limits: imageio.DefaultLimits}
	conn, _ := serve(t, Cores{Inference: &inference.Server{Repo: repo, Prep: p}, Classifier: &classify.Classifier{Repo: repo, Prep: p}})
	v2, native := oip.NewGRPCInferenceServiceClient(conn), pb.NewClassifyServiceClient(conn)
	ctx := ctxT(t)

	a, b, c := pixels(1), pixels(2), pixels(3)
	var wg sync.WaitGroup
	var tensorOut, imageOut *oip.ModelInferResponse
	var nativeOut *pb.ClassifyResponse
	errs := make([]error, 3)
	wg.Go(func() { tensorOut, errs[0] = v2.ModelInfer(ctx, tensorReq(a)) })
	wg.Go(func() {
		imageOut, errs[1] = v2.ModelInfer(ctx, &oip.ModelInferRequest{ModelName: "classifier_image",
			Inputs:           []*oip.ModelInferRequest_InferInputTensor{{Name: "image", Datatype: "BYTES", Shape: []int64{1}}},
			RawInputContents: [][]byte{inference.EncodeBytes([][]byte{pngOf(t, b)})}})
	})
	wg.Go(func() {
		nativeOut, errs[2] = native.Classify(ctx, &pb.ClassifyRequest{Images: []*pb.Image{{Data: &pb.Image_Encoded{Encoded: pngOf(t, c)}}}, TopK: proto.Int32(10)})
	})
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	rec.mu.Lock()
	runs := rec.runs
	rec.mu.Unlock()
	if len(runs) != 1 || runs[0] != 3 {
		t.Fatalf("session runs %v, want one of 3 rows (the batch was full, so no call waited out the 5 s delay)", runs)
	}
	// Each got its own row: the fake's probability j is pixel j / 255.
	first := func(pix []byte) float32 { return float32(pix[0]) / 255 }
	if got := floats(tensorOut.RawOutputContents[0])[0]; got != first(a) {
		t.Errorf("tensor model: probability 0 = %v, want %v (its own row)", got, first(a))
	}
	if got := floats(imageOut.RawOutputContents[0])[0]; got != first(b) {
		t.Errorf("image model: probability 0 = %v, want %v (its own row)", got, first(b))
	}
	for _, p := range nativeOut.Classifications[0].Predictions {
		if p.ClassIndex == 0 && p.Score != first(c) {
			t.Errorf("Classify: score of class 0 = %v, want %v (its own row)", p.Score, first(c))
		}
	}
}
