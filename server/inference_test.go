package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"image"
	"image/png"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/inference"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/prep"
	"github.com/atelier-vision/atelier/internal/tensor"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

// fakeEngine scores image i's class j as its pixel j / 255, and blocks until
// the call's deadline when an image's first pixel is 255.
type fakeEngine struct{}

func (fakeEngine) Run(ctx context.Context, _ string, in map[string]*tensor.Tensor, _ []string) (map[string]*tensor.Tensor, error) {
	im := in["images"]
	n := int(im.Shape[0])
	size := len(im.Uint8) / n
	probs := make([]float32, n*10)
	for i := range n {
		if im.Uint8[i*size] == 255 {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		for j := range 10 {
			probs[i*10+j] = float32(im.Uint8[i*size+j]) / 255
		}
	}
	out, err := tensor.NewFloat32([]int64{int64(n), 10}, probs)
	return map[string]*tensor.Tensor{"probabilities": out}, err
}

func (fakeEngine) Close() error { return nil }

var labels10 = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// serveInference serves a two-version fake classifier through the real inference core.
func serveInference(t *testing.T) oip.GRPCInferenceServiceClient {
	t.Helper()
	return oip.NewGRPCInferenceServiceClient(serveInferenceConn(t))
}

// serveInferenceConn is serveInference's connection, for calls of the test's own making.
func serveInferenceConn(t *testing.T) *grpc.ClientConn {
	t.Helper()
	conn, _ := serve(t, Cores{Inference: fakeInferenceCore(t)})
	return conn
}

// classifierModel is a 28x28 grey, ten-class classifier, version v, on eng.
func classifierModel(t testing.TB, eng tensor.Engine, v int64) *models.Model {
	t.Helper()
	m, err := models.NewModel(models.Spec{Name: "classifier", Version: v}, "", eng, []tensor.Signature{{Name: models.ServingSignature,
		Inputs:  []tensor.Info{{Key: "images", DType: tensor.Uint8, Shape: []int64{-1, 28, 28, 1}}},
		Outputs: []tensor.Info{{Key: "probabilities", DType: tensor.Float32, Shape: []int64{-1, 10}}}}}, labels10)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fakeInferenceCore is the real inference core over a two-version fake classifier.
func fakeInferenceCore(t testing.TB) *inference.Server {
	t.Helper()
	repo, err := models.NewRepository(classifierModel(t, fakeEngine{}, 1), classifierModel(t, fakeEngine{}, 2))
	if err != nil {
		t.Fatal(err)
	}
	return &inference.Server{Repo: repo, Prep: &prep.Preparer{Limits: imageio.DefaultLimits}}
}

// pixels returns a 28x28 grey image whose pixel j is (seed+j*20) mod 250.
func pixels(seed int) []byte {
	p := make([]byte, 28*28)
	for j := range p {
		p[j] = byte((seed + j*20) % 250)
	}
	return p
}

func pngOf(t *testing.T, pix []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, &image.Gray{Pix: pix, Stride: 28, Rect: image.Rect(0, 0, 28, 28)}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func floats(raw []byte) []float32 {
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

func tensorReq(pix ...[]byte) *oip.ModelInferRequest {
	raw := bytes.Join(pix, nil)
	return &oip.ModelInferRequest{ModelName: "classifier",
		Inputs:           []*oip.ModelInferRequest_InferInputTensor{{Name: "images", Datatype: "UINT8", Shape: []int64{int64(len(pix)), 28, 28, 1}}},
		RawInputContents: [][]byte{raw}}
}

func TestInferenceServerAndModelRPCs(t *testing.T) {
	c := serveInference(t)
	ctx := ctxT(t)
	if r, err := c.ServerLive(ctx, &oip.ServerLiveRequest{}); err != nil || !r.Live {
		t.Fatalf("ServerLive: got %v, %v, want live", r, err)
	}
	if r, err := c.ServerReady(ctx, &oip.ServerReadyRequest{}); err != nil || r.Ready {
		t.Fatalf("ServerReady before SetServing: got %v, %v, want not ready", r, err)
	}
	md, err := c.ServerMetadata(ctx, &oip.ServerMetadataRequest{})
	if err != nil || md.Name != "atelier" || strings.Join(md.Extensions, ",") != "parameters" { // no repository RPCs without a lifecycle and tokens
		t.Fatalf("ServerMetadata: got %v, %v", md, err)
	}
	mm, err := c.ModelMetadata(ctx, &oip.ModelMetadataRequest{Name: "classifier"})
	if err != nil {
		t.Fatal(err)
	}
	in, out := mm.Inputs[0], mm.Outputs[0]
	if in.Name != "images" || in.Datatype != "UINT8" || !equalShape(in.Shape, []int64{-1, 28, 28, 1}) ||
		out.Name != "probabilities" || out.Datatype != "FP32" || !equalShape(out.Shape, []int64{-1, 10}) ||
		strings.Join(mm.Versions, ",") != "2,1" || mm.Properties["image_model"].GetStringParam() != "classifier_image" {
		t.Fatalf("ModelMetadata(classifier): got %v", mm)
	}
	im, err := c.ModelMetadata(ctx, &oip.ModelMetadataRequest{Name: "classifier_image"})
	if err != nil {
		t.Fatal(err)
	}
	if im.Inputs[0].Name != "image" || im.Inputs[0].Datatype != "BYTES" || im.Outputs[1].Name != "label" || im.Outputs[1].Datatype != "BYTES" {
		t.Fatalf("ModelMetadata(classifier_image): got %v", im)
	}
	if _, err := c.ModelMetadata(ctx, &oip.ModelMetadataRequest{Name: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("ModelMetadata(nope): got %v, want NotFound", err)
	}
	if r, err := c.ModelReady(ctx, &oip.ModelReadyRequest{Name: "nope"}); err != nil || r.Ready {
		t.Fatalf("ModelReady(nope): got %v, %v, want not ready", r, err)
	}
}

func TestModelInferRawTypedAndImageAgree(t *testing.T) {
	c := serveInference(t)
	ctx := ctxT(t)
	a, b := pixels(3), pixels(77)
	raw, err := c.ModelInfer(ctx, tensorReq(a, b))
	if err != nil {
		t.Fatal(err)
	}
	if raw.ModelVersion != "2" || raw.Outputs[0].Name != "probabilities" || !equalShape(raw.Outputs[0].Shape, []int64{2, 10}) {
		t.Fatalf("got %v, want probabilities [2 10] from version 2", raw)
	}
	got := floats(raw.RawOutputContents[0])
	for i, pix := range [][]byte{a, b} {
		for j := range 10 {
			if want := float32(pix[j]) / 255; got[i*10+j] != want {
				t.Fatalf("image %d class %d: got %v, want %v", i, j, got[i*10+j], want)
			}
		}
	}
	typed := &oip.ModelInferRequest{ModelName: "classifier", ModelVersion: "1", Id: "req-7",
		Inputs: []*oip.ModelInferRequest_InferInputTensor{{Name: "images", Datatype: "UINT8", Shape: []int64{2, 28, 28, 1},
			Contents: &oip.InferTensorContents{UintContents: toUint32(append(append([]byte{}, a...), b...))}}}}
	tr, err := c.ModelInfer(ctx, typed)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Id != "req-7" || tr.ModelVersion != "1" || !bytes.Equal(tr.RawOutputContents[0], raw.RawOutputContents[0]) {
		t.Fatalf("typed contents: got id %q version %q and different bytes, want req-7, 1 and the raw answer", tr.Id, tr.ModelVersion)
	}
	img := &oip.ModelInferRequest{ModelName: "classifier_image",
		Inputs:           []*oip.ModelInferRequest_InferInputTensor{{Name: "image", Datatype: "BYTES", Shape: []int64{2}}},
		RawInputContents: [][]byte{inference.EncodeBytes([][]byte{pngOf(t, a), pngOf(t, b)})}}
	ir, err := c.ModelInfer(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ir.RawOutputContents[0], raw.RawOutputContents[0]) {
		t.Fatalf("classifier_image probabilities %v differ from the tensor model's %v", floats(ir.RawOutputContents[0]), got)
	}
	labels, err := inference.DecodeBytes("label", ir.RawOutputContents[1], 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, pix := range [][]byte{a, b} {
		best := 0
		for j := range 10 {
			if pix[j] > pix[best] {
				best = j
			}
		}
		if string(labels[i]) != labels10[best] {
			t.Fatalf("image %d: got label %q, want %q", i, labels[i], labels10[best])
		}
	}
}

func toUint32(b []byte) []uint32 {
	out := make([]uint32, len(b))
	for i, v := range b {
		out[i] = uint32(v)
	}
	return out
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
