package main

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/jpeg"
	"math"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/atelier-vision/atelier/internal/fashionmnist"
	"github.com/atelier-vision/atelier/internal/inference"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

// TestOpenInferenceProtocolEqualsClassify drives the real classifier through a Go
// client generated from the vendored proto: metadata, the UINT8 tensor model, the
// JPEG image model and a 100-request stream, each equal to Classify to 1e-6.
func TestOpenInferenceProtocolEqualsClassify(t *testing.T) {
	set := testSet(t)
	_, conn := startApp(t)
	v2 := oip.NewGRPCInferenceServiceClient(conn)
	native := pb.NewClassifyServiceClient(conn)
	ctx := ctxFor(t, 5*time.Minute)

	if r, err := v2.ServerLive(ctx, &oip.ServerLiveRequest{}); err != nil || !r.Live {
		t.Fatalf("ServerLive: %v, %v", r, err)
	}
	if r, err := v2.ServerReady(ctx, &oip.ServerReadyRequest{}); err != nil || !r.Ready {
		t.Fatalf("ServerReady: %v, %v", r, err)
	}
	if r, err := v2.ServerMetadata(ctx, &oip.ServerMetadataRequest{}); err != nil || r.Name != "atelier" || !slices.Contains(r.Extensions, "parameters") {
		t.Fatalf("ServerMetadata: %v, %v", r, err)
	}
	for name, want := range map[string]bool{"classifier": true, "classifier_image": true, "nope": false} {
		if r, err := v2.ModelReady(ctx, &oip.ModelReadyRequest{Name: name}); err != nil || r.Ready != want {
			t.Fatalf("ModelReady(%s): %v, %v; want ready %v", name, r, err, want)
		}
	}
	md, err := v2.ModelMetadata(ctx, &oip.ModelMetadataRequest{Name: "classifier"})
	if err != nil {
		t.Fatal(err)
	}
	if in := md.Inputs[0]; in.Name != "images" || in.Datatype != "UINT8" || len(in.Shape) != 4 {
		t.Fatalf("classifier input: got %v, want images UINT8 [-1 H W C]", in)
	}
	classify := func(files [][]byte) []float32 {
		req := &pb.ClassifyRequest{TopK: proto.Int32(10)}
		for _, f := range files {
			req.Images = append(req.Images, encoded(f))
		}
		resp, err := native.Classify(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float32, 10*len(files))
		for i, c := range resp.Classifications {
			for _, p := range c.Predictions {
				out[i*10+int(p.ClassIndex)] = p.Score
			}
		}
		return out
	}
	const n = 16
	var raw []byte
	var pngs, jpegs [][]byte
	for i := range n {
		raw = append(raw, set.Images[i]...)
		pngs = append(pngs, greyPNG(t, set.Images[i]))
		jpegs = append(jpegs, greyJPEG(t, set.Images[n+i]))
	}
	res, err := v2.ModelInfer(ctx, &oip.ModelInferRequest{ModelName: "classifier",
		Inputs:           []*oip.ModelInferRequest_InferInputTensor{{Name: "images", Datatype: "UINT8", Shape: []int64{n, 28, 28, 1}}},
		RawInputContents: [][]byte{raw}})
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "UINT8 tensor", le32(res.RawOutputContents[0]), classify(pngs))

	res, err = v2.ModelInfer(ctx, &oip.ModelInferRequest{ModelName: "classifier_image",
		Inputs:           []*oip.ModelInferRequest_InferInputTensor{{Name: "image", Datatype: "BYTES", Shape: []int64{n}}},
		RawInputContents: [][]byte{inference.EncodeBytes(jpegs)},
		Outputs:          []*oip.ModelInferRequest_InferRequestedOutputTensor{{Name: "probabilities"}, {Name: "label"}}})
	if err != nil {
		t.Fatal(err)
	}
	jpegWant := classify(jpegs)
	closeTo(t, "JPEG image model", le32(res.RawOutputContents[0]), jpegWant)
	// The label output names each image's top class, as Classify's first prediction does.
	names, err := inference.DecodeBytes("label", res.RawOutputContents[1], n)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		row := jpegWant[i*10 : (i+1)*10]
		top := slices.Index(row, slices.Max(row))
		if string(names[i]) != fashionmnist.Labels[top] {
			t.Errorf("image %d: label %q, want %q (class %d)", i, names[i], fashionmnist.Labels[top], top)
		}
	}

	stream, err := v2.ModelStreamInfer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const m = 100
	go func() {
		for i := range m {
			stream.Send(&oip.ModelInferRequest{ModelName: "classifier", Id: string(rune('0' + i%10)),
				Inputs:           []*oip.ModelInferRequest_InferInputTensor{{Name: "images", Datatype: "UINT8", Shape: []int64{1, 28, 28, 1}}},
				RawInputContents: [][]byte{set.Images[i]}})
		}
		stream.CloseSend()
	}()
	var got []float32
	for i := range m {
		r, err := stream.Recv()
		if err != nil || r.ErrorMessage != "" {
			t.Fatalf("stream answer %d: %v %q", i, err, r.GetErrorMessage())
		}
		if r.InferResponse.Id != string(rune('0'+i%10)) {
			t.Fatalf("stream answer %d has id %q: out of order", i, r.InferResponse.Id)
		}
		got = append(got, le32(r.InferResponse.RawOutputContents[0])...)
	}
	var want []float32
	for start := 0; start < m; start += 50 {
		var files [][]byte
		for i := start; i < start+50; i++ {
			files = append(files, greyPNG(t, set.Images[i]))
		}
		want = append(want, classify(files)...)
	}
	closeTo(t, "stream of 100", got, want)
}

func le32(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func closeTo(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d numbers, want %d", what, len(got), len(want))
	}
	worst := 0.0
	for i := range got {
		worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
	}
	t.Logf("%s: max |V2 - Classify| = %.3g", what, worst)
	if worst > 1e-6 {
		t.Fatalf("%s differs from Classify by %g, want <= 1e-6", what, worst)
	}
}

func greyJPEG(t testing.TB, pix []uint8) []byte {
	t.Helper()
	im := &image.Gray{Pix: pix, Stride: fashionmnist.Side, Rect: image.Rect(0, 0, fashionmnist.Side, fashionmnist.Side)}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, im, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
