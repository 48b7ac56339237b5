package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/atelier-vision/atelier/internal/fashionmnist"
	"github.com/atelier-vision/atelier/internal/parallel"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// TestClassifyAccuracy sends the whole official test split through gRPC as PNG files
// and checks the classifier's top-1 accuracy.
func TestClassifyAccuracy(t *testing.T) {
	_, conn := startApp(t)
	set := testSet(t)
	acc := accuracy(topOne(t, conn, set), set)
	t.Logf("accuracy through gRPC on %d test images: %.4f", len(set.Images), acc)
	if acc < 0.94 {
		t.Fatalf("got accuracy %.4f, want >= 0.94", acc)
	}
}

// topOne classifies every image of set through gRPC, as PNGs in requests of 64 on two
// connections' worth of concurrency, and returns each image's best class.
func topOne(t *testing.T, conn *grpc.ClientConn, set *fashionmnist.Set) []int32 {
	t.Helper()
	client := pb.NewClassifyServiceClient(conn)
	const batch = 64
	best := make([]int32, len(set.Images))
	err := parallel.For(context.Background(), (len(set.Images)+batch-1)/batch, 2, func(b int) error {
		start, end := b*batch, min((b+1)*batch, len(set.Images))
		req := &pb.ClassifyRequest{TopK: proto.Int32(1)}
		for i := start; i < end; i++ {
			req.Images = append(req.Images, encoded(greyPNG(t, set.Images[i])))
		}
		resp, err := client.Classify(ctxFor(t, time.Minute), req)
		if err != nil {
			return err
		}
		for i, c := range resp.Classifications {
			best[start+i] = c.Predictions[0].ClassIndex
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Classify: %v", err)
	}
	return best
}

// accuracy is the share of best classes that match set's labels.
func accuracy(best []int32, set *fashionmnist.Set) float64 {
	correct := 0
	for i, c := range best {
		if c == int32(set.Labels[i]) {
			correct++
		}
	}
	return float64(correct) / float64(len(best))
}

// TestClassifyAgreesAcrossEncodings checks that the same picture sent as a grey PNG,
// an RGB PNG, and a raw RGB frame gets the same probabilities.
func TestClassifyAgreesAcrossEncodings(t *testing.T) {
	_, conn := startApp(t)
	client := pb.NewClassifyServiceClient(conn)
	pix := testSet(t).Images[0]
	rgb := make([]byte, 0, len(pix)*3)
	rgba := image.NewRGBA(image.Rect(0, 0, 28, 28))
	for i, v := range pix {
		rgb = append(rgb, v, v, v)
		rgba.Set(i%28, i/28, color.RGBA{v, v, v, 255})
	}
	var rgbPNG bytes.Buffer
	png.Encode(&rgbPNG, rgba)
	req := &pb.ClassifyRequest{TopK: proto.Int32(10), Images: []*pb.Image{
		encoded(greyPNG(t, pix)),
		encoded(rgbPNG.Bytes()),
		{Data: &pb.Image_Raw{Raw: &pb.RawImage{Rgb: rgb, Width: 28, Height: 28}}},
	}}
	resp, err := client.Classify(ctxFor(t, time.Minute), req)
	if err != nil {
		t.Fatal(err)
	}
	want := scores(resp.Classifications[0])
	for i, c := range resp.Classifications[1:] {
		got := scores(c)
		for k := range want {
			if math.Abs(float64(got[k]-want[k])) > 1e-6 {
				t.Fatalf("encoding %d: class %d got %v, want %v", i+1, k, got[k], want[k])
			}
		}
	}
	if got := resp.Classifications[0].Predictions[0].Label; got != "Ankle boot" {
		t.Fatalf("got label %q for the first test item, want Ankle boot", got)
	}
	if resp.Model.GetName() != "classifier" || resp.Model.GetVersion() != 1 {
		t.Fatalf("got model %v, want classifier:1", resp.Model)
	}
}

// TestClassifyResizes sends a bigger JPEG; the server resizes it to the model's input.
func TestClassifyResizes(t *testing.T) {
	_, conn := startApp(t)
	pix := testSet(t).Images[1] // a pullover
	big := image.NewGray(image.Rect(0, 0, 112, 112))
	for y := 0; y < 112; y++ {
		for x := 0; x < 112; x++ {
			big.Pix[y*112+x] = pix[(y/4)*28+x/4]
		}
	}
	var buf bytes.Buffer
	jpeg.Encode(&buf, big, &jpeg.Options{Quality: 95})
	resp, err := pb.NewClassifyServiceClient(conn).Classify(ctxFor(t, time.Minute),
		&pb.ClassifyRequest{Images: []*pb.Image{encoded(buf.Bytes())}})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(resp.Classifications[0].Predictions); got != 5 {
		t.Fatalf("got %d predictions, want the default 5", got)
	}
	if got := resp.Classifications[0].Predictions[0].Label; got != "Pullover" {
		t.Fatalf("got %q for an upscaled pullover, want Pullover", got)
	}
}

func scores(c *pb.Classification) map[int32]float32 {
	m := map[int32]float32{}
	for _, p := range c.Predictions {
		m[p.ClassIndex] = p.Score
	}
	return m
}

// pngBomb is a valid PNG whose header claims w x h pixels.
func pngBomb(t *testing.T, w, h uint32) []byte {
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 2, 2)))
	data := buf.Bytes()
	binary.BigEndian.PutUint32(data[16:], w)
	binary.BigEndian.PutUint32(data[20:], h)
	binary.BigEndian.PutUint32(data[29:], crc32.ChecksumIEEE(data[12:29]))
	return data
}

// TestClassifyBadInput sends every kind of bad request and checks the code and the
// message, and that a good request still succeeds after each.
func TestClassifyBadInput(t *testing.T) {
	_, conn := startApp(t)
	client := pb.NewClassifyServiceClient(conn)
	good := greyPNG(t, testSet(t).Images[0])
	var jpg bytes.Buffer
	jpeg.Encode(&jpg, image.NewGray(image.Rect(0, 0, 64, 64)), nil)
	truncated := jpg.Bytes()[:jpg.Len()/2]
	one := func(img *pb.Image) []*pb.Image { return []*pb.Image{img} }
	tests := []struct {
		name    string
		req     *pb.ClassifyRequest
		code    codes.Code
		message string
	}{
		{"empty bytes", &pb.ClassifyRequest{Images: one(encoded(nil))}, codes.InvalidArgument, "no bytes"},
		{"no image set", &pb.ClassifyRequest{Images: one(&pb.Image{})}, codes.InvalidArgument, "set image.encoded"},
		{"truncated jpeg", &pb.ClassifyRequest{Images: one(encoded(truncated))}, codes.InvalidArgument, "truncated"},
		{"not an image", &pb.ClassifyRequest{Images: one(encoded([]byte("just some text, not a picture")))}, codes.InvalidArgument, "not a readable JPEG or PNG"},
		{"decompression bomb", &pb.ClassifyRequest{Images: one(encoded(pngBomb(t, 60000, 60000)))}, codes.InvalidArgument, "exceeds the limit"},
		{"raw size mismatch", &pb.ClassifyRequest{Images: one(&pb.Image{Data: &pb.Image_Raw{Raw: &pb.RawImage{Rgb: make([]byte, 100), Width: 28, Height: 28}}})}, codes.InvalidArgument, "needs 2352 bytes"},
		{"raw zero size", &pb.ClassifyRequest{Images: one(&pb.Image{Data: &pb.Image_Raw{Raw: &pb.RawImage{}}})}, codes.InvalidArgument, "must be positive"},
		{"top_k zero", &pb.ClassifyRequest{Images: one(encoded(good)), TopK: proto.Int32(0)}, codes.InvalidArgument, "top_k 0"},
		{"top_k negative", &pb.ClassifyRequest{Images: one(encoded(good)), TopK: proto.Int32(-3)}, codes.InvalidArgument, "top_k -3"},
		{"top_k absurd", &pb.ClassifyRequest{Images: one(encoded(good)), TopK: proto.Int32(1 << 30)}, codes.InvalidArgument, "out of range"},
		{"no images", &pb.ClassifyRequest{}, codes.InvalidArgument, "no images"},
		{"too many images", &pb.ClassifyRequest{Images: make([]*pb.Image, 65)}, codes.InvalidArgument, "over the limit of 64"},
		{"unknown model", &pb.ClassifyRequest{Images: one(encoded(good)), Model: &pb.ModelSpec{Name: "no-such-model"}}, codes.NotFound, `no model named "no-such-model"`},
		{"unknown version", &pb.ClassifyRequest{Images: one(encoded(good)), Model: &pb.ModelSpec{Name: "classifier", Version: 99}}, codes.NotFound, "no version 99"},
		{"second image bad", &pb.ClassifyRequest{Images: []*pb.Image{encoded(good), encoded([]byte{0xff, 0xd8, 0xff})}}, codes.InvalidArgument, "image 1"},
		{"negative version", &pb.ClassifyRequest{Images: one(encoded(good)), Model: &pb.ModelSpec{Name: "classifier", Version: -1}}, codes.InvalidArgument, "model.version -1 is negative"},
		{"raw sides of 2^32-1", &pb.ClassifyRequest{Images: one(&pb.Image{Data: &pb.Image_Raw{Raw: &pb.RawImage{Rgb: make([]byte, 3), Width: math.MaxUint32, Height: math.MaxUint32}}})},
			codes.InvalidArgument, "exceeds the limit of 8192 pixels a side"},
	}
	for i := range tests[11].req.Images {
		tests[11].req.Images[i] = encoded(good)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Classify(ctxFor(t, time.Minute), tc.req)
			st := status.Convert(err)
			if st.Code() != tc.code || !strings.Contains(st.Message(), tc.message) {
				t.Fatalf("got %v %q, want %v containing %q", st.Code(), st.Message(), tc.code, tc.message)
			}
			resp, err := client.Classify(ctxFor(t, time.Minute), &pb.ClassifyRequest{Images: one(encoded(good))})
			if err != nil || len(resp.Classifications) != 1 {
				t.Fatalf("a good request after the bad one: got %v, %v", resp, err)
			}
		})
	}
}

// TestMessageTooLarge checks that a request over --max-message-bytes is refused with
// ResourceExhausted and a message naming the limit.
func TestMessageTooLarge(t *testing.T) {
	_, conn := startApp(t, func(c *config) { c.MaxMessageBytes = 1 << 20 })
	_, err := pb.NewClassifyServiceClient(conn).Classify(ctxFor(t, time.Minute),
		&pb.ClassifyRequest{Images: []*pb.Image{encoded(make([]byte, 2<<20))}})
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "larger than max") {
		t.Fatalf("got %v %q, want ResourceExhausted naming the limit", st.Code(), st.Message())
	}
}
