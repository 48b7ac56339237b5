package main

import (
	"bytes"
	"image"
	"image/png"
	"math"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/atelier-vision/atelier/internal/inference"
	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

// TestDetectorImageEqualsDetect drives the real detector through the Open Inference
// Protocol's image model, detector_image, with a held-out scene and a blank picture in
// one request, and holds it against native Detect (no classification, no tiling, no
// score floor): the same boxes in the same order with the same scores, their labels
// the detector's garment types, and the blank picture's rows padding.
func TestDetectorImageEqualsDetect(t *testing.T) {
	testenv.ModelDir(t, "detector", "classifier")
	_, conn := startApp(t)
	v2 := oip.NewGRPCInferenceServiceClient(conn)
	native := pb.NewDetectServiceClient(conn)
	ctx := ctxFor(t, 3*time.Minute)
	truth := heldOut(t, 1, "")
	scene := readScene(t, truth, 0)
	var blank bytes.Buffer
	if err := png.Encode(&blank, image.NewGray(image.Rect(0, 0, truth.Scenes[0].Width, truth.Scenes[0].Height))); err != nil {
		t.Fatal(err)
	}

	want, err := native.Detect(ctx, &pb.DetectRequest{Image: encoded(scene), SkipClassification: true,
		MinScore: proto.Float32(0), MaxDetections: proto.Int32(100), Tiling: pb.Tiling_TILING_OFF})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := v2.ModelInfer(ctx, &oip.ModelInferRequest{ModelName: "detector_image",
		Inputs:           []*oip.ModelInferRequest_InferInputTensor{{Name: "image", Datatype: "BYTES", Shape: []int64{2}}},
		RawInputContents: [][]byte{inference.EncodeBytes([][]byte{scene, blank.Bytes()})}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for i, o := range resp.Outputs {
		out[o.Name] = i
	}
	for _, name := range []string{"detection_boxes", "detection_scores", "detection_classes", "num_detections", "detection_labels"} {
		if _, ok := out[name]; !ok {
			t.Fatalf("no %s output among %v", name, resp.Outputs)
		}
	}
	shape := func(name string) []int64 { return resp.Outputs[out[name]].Shape }
	raw := func(name string) []byte { return resp.RawOutputContents[out[name]] }
	num := le32(raw("num_detections"))
	k := int(shape("detection_scores")[1])
	if len(num) != 2 || int(num[0]) != len(want.Detections) || num[1] != 0 || k != len(want.Detections) {
		t.Fatalf("num_detections %v with K %d, want [%d 0] and K %d (the scene's count; the blank has none)", num, k, len(want.Detections), len(want.Detections))
	}
	if len(want.Detections) == 0 {
		t.Fatal("Detect found nothing in the held-out scene")
	}
	if !slices.Equal(shape("detection_boxes"), []int64{2, int64(k), 4}) || !slices.Equal(shape("detection_labels"), []int64{2, int64(k)}) {
		t.Fatalf("shapes: boxes %v, labels %v; want [2 %d 4] and [2 %d]", shape("detection_boxes"), shape("detection_labels"), k, k)
	}
	scores, boxes := le32(raw("detection_scores")), le32(raw("detection_boxes"))
	labels, err := inference.DecodeBytes("detection_labels", raw("detection_labels"), int64(2*k))
	if err != nil {
		t.Fatal(err)
	}
	w, h := float32(truth.Scenes[0].Width), float32(truth.Scenes[0].Height)
	for j, d := range want.Detections {
		if math.Abs(float64(scores[j]-d.Score)) > 1e-6 {
			t.Errorf("detection %d: score %v, Detect's %v", j, scores[j], d.Score)
		}
		if string(labels[j]) != d.GarmentType {
			t.Errorf("detection %d: label %q, Detect's garment type %q", j, labels[j], d.GarmentType)
		}
		// V2 boxes are the model's [ymin, xmin, ymax, xmax], a fraction of the picture;
		// Detect's are pixels.
		b := boxes[j*4 : j*4+4]
		got := []float32{b[1] * w, b[0] * h, b[3] * w, b[2] * h}
		for c, v := range []float32{d.Box.XMin, d.Box.YMin, d.Box.XMax, d.Box.YMax} {
			if math.Abs(float64(got[c]-v)) > 1 {
				t.Errorf("detection %d: box %v (pixels), Detect's %v", j, got, d.Box)
				break
			}
		}
	}
	t.Logf("%d detections compared; first score %v label %q box %v", len(want.Detections), scores[0], labels[0], boxes[:4])
	for j := range k { // the blank picture's rows are padding
		if scores[k+j] != 0 || len(labels[k+j]) != 0 {
			t.Errorf("blank picture row %d: score %v, label %q; want padding", j, scores[k+j], labels[k+j])
		}
	}
}
