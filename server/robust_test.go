package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/internal/batching"
	"github.com/atelier-vision/atelier/internal/classify"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/prep"
	"github.com/atelier-vision/atelier/internal/tensor"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// Pixel values that make the fakes below panic.
const (
	panicInBatch  = 201 // the model's engine, on a batch worker
	panicInResize = 3   // image width: the resizer, on a parallel image worker
	panicInFrame  = 202 // the stream frame's own goroutine
)

// touchyEngine is a 4x4 grey classifier of two classes that panics when an image's
// first pixel is panicInBatch.
type touchyEngine struct{}

func (touchyEngine) Run(_ context.Context, _ string, in map[string]*tensor.Tensor, _ []string) (map[string]*tensor.Tensor, error) {
	im := in["images"]
	n := int(im.Shape[0])
	for i := range n {
		if im.Uint8[i*16] == panicInBatch {
			panic("forced panic in a batch worker")
		}
	}
	out, err := tensor.NewFloat32([]int64{int64(n), 2}, make([]float32, n*2))
	return map[string]*tensor.Tensor{"probabilities": out}, err
}

func (touchyEngine) Close() error { return nil }

// touchyResizer panics on images panicInResize pixels wide.
type touchyResizer struct{}

func (touchyResizer) Resize(pix []uint8, h, w, c, outH, outW int) ([]uint8, error) {
	if w == panicInResize {
		panic("forced panic in a parallel image worker")
	}
	return make([]uint8, outH*outW*c), nil
}

// touchyCore is the real classify core, except that it panics in the calling
// goroutine (a stream frame's) when the first raw pixel is panicInFrame.
type touchyCore struct{ *classify.Classifier }

func (c touchyCore) Classify(ctx context.Context, req classify.Request) (classify.Result, error) {
	if f := req.Images[0].Frame; f != nil && len(f.RGB) > 0 && f.RGB[0] == panicInFrame {
		panic("forced panic in a stream frame")
	}
	return c.Classifier.Classify(ctx, req)
}

func grey(w, h int, first uint8) *pb.Image {
	rgb := make([]byte, w*h*3)
	rgb[0], rgb[1], rgb[2] = first, first, first
	return &pb.Image{Data: &pb.Image_Raw{Raw: &pb.RawImage{Rgb: rgb, Width: uint32(w), Height: uint32(h)}}}
}

// TestPanicsBecomeInternalAndTheServerGoesOn forces a panic in a batch worker, a
// parallel image worker and a stream frame; each call (or frame) fails with Internal,
// the log has the panic once with its stack, and the next call succeeds.
func TestPanicsBecomeInternalAndTheServerGoesOn(t *testing.T) {
	engine, err := batching.New(touchyEngine{}, batching.Config{MaxBatch: 8, MaxDelay: time.Millisecond, QueueSize: 16, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.NewModel(models.Spec{Name: "classifier", Version: 1}, "", engine, []tensor.Signature{{Name: models.ServingSignature,
		Inputs:  []tensor.Info{{Key: "images", DType: tensor.Uint8, Shape: []int64{-1, 4, 4, 1}}},
		Outputs: []tensor.Info{{Key: "probabilities", DType: tensor.Float32, Shape: []int64{-1, 2}}}}}, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := models.NewRepository(m)
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	core := touchyCore{&classify.Classifier{Repo: repo, Prep: &prep.Preparer{Limits: imageio.DefaultLimits, Resizer: touchyResizer{}}}}
	conn, logs := serve(t, Cores{Classifier: core})
	client := pb.NewClassifyServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ok := func(when string) {
		t.Helper()
		if _, err := client.Classify(ctx, &pb.ClassifyRequest{Images: []*pb.Image{grey(4, 4, 1), grey(8, 8, 1)}}); err != nil {
			t.Fatalf("a good call %s: %v", when, err)
		}
	}
	ok("at the start")
	for _, tc := range []struct {
		where  string
		images []*pb.Image
	}{
		{"batch worker", []*pb.Image{grey(4, 4, panicInBatch)}},
		{"parallel image worker", []*pb.Image{grey(4, 4, 1), grey(panicInResize, 4, 1), grey(4, 4, 1)}},
	} {
		_, err := client.Classify(ctx, &pb.ClassifyRequest{Images: tc.images})
		if st := status.Convert(err); st.Code() != codes.Internal || strings.Contains(st.Message(), "forced") {
			t.Fatalf("panic in a %s: got %v, want Internal without the panic's text", tc.where, err)
		}
		ok("after a panic in a " + tc.where)
	}

	stream, err := client.ClassifyStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Config{Config: &pb.ClassifyStreamConfig{}}})
	// (A batch worker's panic fails every call in its batch, so it is shown above with
	// unary calls, whose batches are their own.)
	for i, first := range []uint8{1, panicInFrame, 1} {
		stream.Send(&pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Frame{Frame: &pb.StreamFrame{FrameId: uint64(i), Image: grey(4, 4, first)}}})
	}
	stream.CloseSend()
	var codesSeen []codes.Code
	for {
		resp, err := stream.Recv()
		if err != nil {
			if status.Code(err) != codes.OK && err.Error() != "EOF" {
				t.Fatalf("the stream ended with %v", err)
			}
			break
		}
		if r := resp.GetResult(); r != nil {
			codesSeen = append(codesSeen, codes.Code(r.GetError().GetCode()))
		}
	}
	want := []codes.Code{codes.OK, codes.Internal, codes.OK}
	if len(codesSeen) != len(want) {
		t.Fatalf("frame codes %v, want %v", codesSeen, want)
	}
	for i := range want {
		if codesSeen[i] != want[i] {
			t.Fatalf("frame codes %v, want %v", codesSeen, want)
		}
	}
	ok("after the stream")
	// Each panic is one ERROR line holding its stack, and no other line names it.
	for _, p := range []string{"forced panic in a batch worker", "forced panic in a parallel image worker", "forced panic in a stream frame"} {
		var withStack, all []string
		for _, line := range strings.Split(logs.String(), "\n") {
			if !strings.Contains(line, p) {
				continue
			}
			all = append(all, line)
			if strings.Contains(line, "level=ERROR") && strings.Contains(line, "stack=") && strings.Contains(line, "goroutine") {
				withStack = append(withStack, line)
			}
		}
		if len(withStack) != 1 || len(all) != 1 {
			t.Errorf("%q: %d ERROR lines with its stack and %d lines in all, want one:\n%s", p, len(withStack), len(all), strings.Join(all, "\n"))
		}
	}
}
