package main

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

func raw(rgb []byte, w, h uint32) *pb.Image {
	return &pb.Image{Data: &pb.Image_Raw{Raw: &pb.RawImage{Rgb: rgb, Width: w, Height: h}}}
}

// wantStatus fails unless err has code and its message holds every part.
func wantStatus(t *testing.T, err error, code codes.Code, parts ...string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code {
		t.Fatalf("got %v %q, want %v", st.Code(), st.Message(), code)
	}
	for _, p := range parts {
		if !strings.Contains(st.Message(), p) {
			t.Fatalf("got %v %q, want it to say %q", st.Code(), st.Message(), p)
		}
	}
}

// TestUnaryEdgeValues sends values at and past the edges of every unary RPC's fields
// not covered by the *BadInput tests to the real cores: each must be refused as the
// caller's mistake, naming the field and the limit, or served; never INTERNAL.
func TestUnaryEdgeValues(t *testing.T) {
	testenv.ModelDir(t, "detector", "classifier", "generator")
	_, conn := startApp(t, func(c *config) { c.MaxPixels = 1_000_000 })
	cls, det, gen := pb.NewClassifyServiceClient(conn), pb.NewDetectServiceClient(conn), pb.NewGenerateServiceClient(conn)
	one := func(img *pb.Image) []*pb.Image { return []*pb.Image{img} }
	px := raw(make([]byte, 3), 1, 1)

	classify := []struct {
		name  string
		req   *pb.ClassifyRequest
		code  codes.Code
		parts []string
	}{
		{"raw width 0 with data", &pb.ClassifyRequest{Images: one(raw(make([]byte, 30), 0, 10))}, codes.InvalidArgument, []string{"image 0", "0x10 must be positive"}},
		{"raw height 0 with data", &pb.ClassifyRequest{Images: one(raw(make([]byte, 30), 10, 0))}, codes.InvalidArgument, []string{"10x0 must be positive"}},
		{"raw w*h*3 wraps 32 bits", &pb.ClassifyRequest{Images: one(raw(make([]byte, 3), 1<<16, 1<<16))}, codes.InvalidArgument, []string{"exceeds the limit of 8192 pixels a side"}},
		{"raw over max-pixels", &pb.ClassifyRequest{Images: one(raw(make([]byte, 3), 8192, 8192))}, codes.InvalidArgument, []string{"over the limit of 1000000"}},
		{"raw one pixel", &pb.ClassifyRequest{Images: one(px)}, codes.OK, nil},
		{"top_k at the bound", &pb.ClassifyRequest{Images: one(px), TopK: proto.Int32(1000)}, codes.OK, nil},
		{"top_k past the bound", &pb.ClassifyRequest{Images: one(px), TopK: proto.Int32(1001)}, codes.InvalidArgument, []string{"top_k 1001 is out of range 1..1000"}},
		{"top_k min int32", &pb.ClassifyRequest{Images: one(px), TopK: proto.Int32(math.MinInt32)}, codes.InvalidArgument, []string{"top_k -2147483648"}},
		{"version max int64", &pb.ClassifyRequest{Images: one(px), Model: &pb.ModelSpec{Version: math.MaxInt64}}, codes.NotFound, []string{"no version 9223372036854775807"}},
		{"version min int64", &pb.ClassifyRequest{Images: one(px), Model: &pb.ModelSpec{Version: math.MinInt64}}, codes.InvalidArgument, []string{"model.version -9223372036854775808 is negative"}},
		{"unknown version label", &pb.ClassifyRequest{Images: one(px), Model: &pb.ModelSpec{VersionLabel: "nope"}}, codes.NotFound, []string{"nope"}},
		{"version and label", &pb.ClassifyRequest{Images: one(px), Model: &pb.ModelSpec{Version: 1, VersionLabel: "x"}}, codes.InvalidArgument, []string{"model.version or model.version_label"}},
		{"generator as classifier", &pb.ClassifyRequest{Images: one(px), Model: &pb.ModelSpec{Name: "generator"}}, codes.FailedPrecondition, []string{"not a classifier"}},
	}
	for _, tc := range classify {
		t.Run("classify "+tc.name, func(t *testing.T) {
			_, err := cls.Classify(ctxFor(t, time.Minute), tc.req)
			wantStatus(t, err, tc.code, tc.parts...)
		})
	}

	tiling := []pb.Tiling{pb.Tiling_TILING_OFF, pb.Tiling_TILING_ON, pb.Tiling_TILING_AUTO}
	detect := []struct {
		name  string
		req   *pb.DetectRequest
		code  codes.Code
		parts []string
	}{
		{"min_score +Inf", &pb.DetectRequest{Image: px, MinScore: proto.Float32(float32(math.Inf(1)))}, codes.InvalidArgument, []string{"min_score +Inf is out of range [0, 1]"}},
		{"min_score -Inf", &pb.DetectRequest{Image: px, MinScore: proto.Float32(float32(math.Inf(-1)))}, codes.InvalidArgument, []string{"min_score -Inf"}},
		{"min_score 0 and 1", &pb.DetectRequest{Image: px, MinScore: proto.Float32(0)}, codes.OK, nil},
		{"min_score 1", &pb.DetectRequest{Image: px, MinScore: proto.Float32(1)}, codes.OK, nil},
		{"max_detections 100 top_k 1000", &pb.DetectRequest{Image: px, MinScore: proto.Float32(0), MaxDetections: proto.Int32(100), TopK: proto.Int32(1000)}, codes.OK, nil},
		{"raw width 0", &pb.DetectRequest{Image: raw(make([]byte, 3), 0, 1)}, codes.InvalidArgument, []string{"0x1 must be positive"}},
		{"raw over max-pixels", &pb.DetectRequest{Image: raw(nil, 2000, 2000)}, codes.InvalidArgument, []string{"2000x2000 is 4000000 pixels, over the limit of 1000000"}},
		{"negative classifier version", &pb.DetectRequest{Image: px, Classifier: &pb.ModelSpec{Version: -2}, SkipClassification: true}, codes.InvalidArgument, []string{"classifier.version -2 is negative"}},
	}
	// Extreme aspect ratios at the side limit, in every tiling mode, min_score 0 so that
	// every box (empty ones included) goes on to the classifier.
	for _, tl := range tiling {
		for _, wh := range [][2]uint32{{8192, 1}, {1, 8192}, {1, 1}, {8192, 122}} {
			detect = append(detect, struct {
				name  string
				req   *pb.DetectRequest
				code  codes.Code
				parts []string
			}{fmt.Sprintf("%v %dx%d", tl, wh[0], wh[1]), &pb.DetectRequest{Image: raw(make([]byte, wh[0]*wh[1]*3), wh[0], wh[1]),
				Tiling: tl, MinScore: proto.Float32(0), MaxDetections: proto.Int32(100)}, codes.OK, nil})
		}
	}
	for _, tc := range detect {
		t.Run("detect "+tc.name, func(t *testing.T) {
			_, err := det.Detect(ctxFor(t, time.Minute), tc.req)
			wantStatus(t, err, tc.code, tc.parts...)
		})
	}

	latent := func(n int, v float32) *pb.Latent {
		l := &pb.Latent{Values: make([]float32, n)}
		for i := range l.Values {
			l.Values[i] = v
		}
		return l
	}
	size := len(generateOK(t, gen, &pb.GenerateRequest{Category: "Bag", Count: 1}).Images[0].Latent.Values)
	generate := []struct {
		name  string
		req   *pb.GenerateRequest
		code  codes.Code
		parts []string
	}{
		{"count at the bound", &pb.GenerateRequest{Category: "Bag", Count: 64}, codes.OK, nil},
		{"empty latent", &pb.GenerateRequest{Category: "Bag", Latents: []*pb.Latent{{}}}, codes.InvalidArgument, []string{"latents[0] has 0 values, want"}},
		{"-Inf latent", &pb.GenerateRequest{Category: "Bag", Latents: []*pb.Latent{latent(size, float32(math.Inf(-1)))}}, codes.InvalidArgument, []string{"latents[0]: value 0 is -Inf"}},
		{"huge finite latent", &pb.GenerateRequest{Category: "Bag", Latents: []*pb.Latent{latent(size, math.MaxFloat32)}}, codes.OK, nil},
		{"latents with count", &pb.GenerateRequest{Category: "Bag", Count: math.MaxUint32, Latents: []*pb.Latent{latent(size, 0)}}, codes.OK, nil},
		{"negative version", &pb.GenerateRequest{Category: "Bag", Count: 1, Model: &pb.ModelSpec{Version: -1}}, codes.InvalidArgument, []string{"model.version -1 is negative"}},
		{"classifier as generator", &pb.GenerateRequest{Category: "Bag", Count: 1, Model: &pb.ModelSpec{Name: "classifier"}}, codes.FailedPrecondition, []string{"not a generator"}},
		{"category wrong case", &pb.GenerateRequest{Category: "bAG", Count: 1}, codes.OK, nil},
	}
	for _, tc := range generate {
		t.Run("generate "+tc.name, func(t *testing.T) {
			_, err := gen.Generate(ctxFor(t, time.Minute), tc.req)
			wantStatus(t, err, tc.code, tc.parts...)
		})
	}

	seed := func(s uint64) *pb.LatentPoint { return &pb.LatentPoint{Point: &pb.LatentPoint_Seed{Seed: s}} }
	point := func(l *pb.Latent) *pb.LatentPoint { return &pb.LatentPoint{Point: &pb.LatentPoint_Latent{Latent: l}} }
	interpolate := []struct {
		name  string
		req   *pb.InterpolateRequest
		code  codes.Code
		parts []string
		n     int
	}{
		{"steps 0", &pb.InterpolateRequest{Category: "Bag", Start: seed(1), End: seed(2)}, codes.InvalidArgument, []string{"steps 0 is out of range 2..128"}, 0},
		{"steps max uint32", &pb.InterpolateRequest{Category: "Bag", Start: seed(1), End: seed(2), Steps: math.MaxUint32}, codes.InvalidArgument, []string{"steps 4294967295 is out of range 2..128"}, 0},
		{"steps 2", &pb.InterpolateRequest{Category: "Bag", Start: seed(1), End: seed(2), Steps: 2}, codes.OK, nil, 2},
		{"steps 128", &pb.InterpolateRequest{Category: "Bag", Start: seed(1), End: seed(1), Steps: 128}, codes.OK, nil, 128},
		{"empty start latent", &pb.InterpolateRequest{Category: "Bag", Start: point(&pb.Latent{}), End: seed(2), Steps: 3}, codes.InvalidArgument, []string{"start.latent has 0 values"}, 0},
		{"nil start latent", &pb.InterpolateRequest{Category: "Bag", Start: &pb.LatentPoint{Point: &pb.LatentPoint_Latent{}}, End: seed(2), Steps: 3}, codes.InvalidArgument, []string{"start.latent has 0 values"}, 0},
		{"Inf end latent", &pb.InterpolateRequest{Category: "Bag", Start: seed(1), End: point(latent(size, float32(math.Inf(1)))), Steps: 3}, codes.InvalidArgument, []string{"end.latent: value 0 is +Inf"}, 0},
		{"huge and opposite latents", &pb.InterpolateRequest{Category: "Bag", Start: point(latent(size, math.MaxFloat32)), End: point(latent(size, -math.MaxFloat32)), Steps: 5}, codes.OK, nil, 5},
		{"zero latents", &pb.InterpolateRequest{Category: "Bag", Start: point(latent(size, 0)), End: point(latent(size, 0)), Steps: 3}, codes.OK, nil, 3},
		{"no category", &pb.InterpolateRequest{Start: seed(1), End: seed(2), Steps: 3}, codes.InvalidArgument, []string{"category is required"}, 0},
		{"no start", &pb.InterpolateRequest{Category: "Bag", End: seed(2), Steps: 3}, codes.InvalidArgument, []string{"start is required"}, 0},
	}
	for _, tc := range interpolate {
		t.Run("interpolate "+tc.name, func(t *testing.T) {
			stream, err := gen.Interpolate(ctxFor(t, time.Minute), tc.req)
			n := 0
			for err == nil {
				if _, err = stream.Recv(); err == nil {
					n++
				}
			}
			if tc.code == codes.OK {
				if err.Error() != "EOF" || n != tc.n {
					t.Fatalf("got %d steps and %v, want %d and EOF", n, err, tc.n)
				}
				return
			}
			wantStatus(t, err, tc.code, tc.parts...)
		})
	}
}

// TestUnaryCostlyInputs sends requests that are small on the wire but declare images
// just under the default --max-pixels: a real one is served, a header without the
// pixels is refused as the caller's mistake. It logs what each cost the server: the
// bound is max-pixels per image, 64 images a request (see the report of this pass).
func TestUnaryCostlyInputs(t *testing.T) {
	testenv.ModelDir(t, "detector", "classifier")
	_, conn := startApp(t)
	cls, det := pb.NewClassifyServiceClient(conn), pb.NewDetectServiceClient(conn)
	var big bytes.Buffer
	jpeg.Encode(&big, image.NewGray(image.Rect(0, 0, 8192, 6000)), &jpeg.Options{Quality: 10})
	// The header of a 64x64 JPEG rewritten to say 8192x6000: a few hundred bytes.
	var small bytes.Buffer
	jpeg.Encode(&small, image.NewGray(image.Rect(0, 0, 64, 64)), nil)
	fake := small.Bytes()
	sof := bytes.Index(fake, []byte{0xff, 0xc0})
	fake[sof+5], fake[sof+6], fake[sof+7], fake[sof+8] = 6000>>8, 6000&0xff, 8192>>8, 8192&0xff
	cases := []struct {
		name string
		imgs []*pb.Image
		code codes.Code
		part string
	}{
		{"one 49 Mpx JPEG", []*pb.Image{encoded(big.Bytes())}, codes.OK, ""},
		{"one JPEG header saying 49 Mpx", []*pb.Image{encoded(fake)}, codes.InvalidArgument, "corrupt or truncated jpeg data"},
		{"64 PNG bombs of 49 Mpx", nil, codes.InvalidArgument, "corrupt or truncated png data"},
		{"64 JPEG headers saying 49 Mpx", nil, codes.InvalidArgument, "corrupt or truncated jpeg data"},
	}
	for range 64 {
		cases[2].imgs = append(cases[2].imgs, encoded(pngBomb(t, 8192, 6000)))
		cases[3].imgs = append(cases[3].imgs, encoded(fake))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := cls.Classify(ctxFor(t, time.Minute), &pb.ClassifyRequest{Images: tc.imgs})
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			size := 0
			for _, im := range tc.imgs {
				size += len(im.GetEncoded())
			}
			t.Logf("classify, %d bytes: %v in %v, %d MB allocated", size, status.Code(err), took, (after.TotalAlloc-before.TotalAlloc)>>20)
			wantStatus(t, err, tc.code, tc.part)
			if len(tc.imgs) == 1 {
				start = time.Now()
				_, err = det.Detect(ctxFor(t, time.Minute), &pb.DetectRequest{Image: tc.imgs[0], Tiling: pb.Tiling_TILING_ON})
				t.Logf("detect with tiling on: %v in %v", status.Code(err), time.Since(start))
				wantStatus(t, err, tc.code, tc.part)
			}
		})
	}
}
