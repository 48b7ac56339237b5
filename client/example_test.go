//go:build cgo

package client_test

import (
	"context"
	"fmt"
	"image/png"
	"log"
	"os"
	"path/filepath"
	"runtime"

	"github.com/atelier-vision/atelier/client"
	"github.com/atelier-vision/atelier/internal/servertest"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// addr returns the address of the test server; in real use it is "localhost:8500".
func addr() string {
	s, err := servertest.Shared()
	if err != nil {
		fmt.Println("no server:", err)
		return "localhost:1"
	}
	return s.Addr
}

// bootPNG is docs/images/sample_boot.png, a Fashion-MNIST ankle boot.
func bootPNG() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "docs", "images", "sample_boot.png")
}

// Classify a PNG file with the server's default classifier.
func Example() {
	c, err := client.New(addr()) // for example "localhost:8500"
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	img, err := client.ImageFile(bootPNG())
	if err != nil {
		log.Fatal(err)
	}
	got, err := c.ClassifyImages(context.Background(), 3, img)
	if err != nil {
		log.Fatal(err)
	}
	best := got[0].Predictions[0]
	fmt.Printf("%s (%d categories returned)\n", best.Label, len(got[0].Predictions))
	// Output: Ankle boot (3 categories returned)
}

// Send a decoded image.Image as a raw RGB frame, with a model and top_k chosen.
func ExampleImageOf() {
	c, err := client.New(addr())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	f, err := os.Open(bootPNG())
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	decoded, err := png.Decode(f)
	if err != nil {
		log.Fatal(err)
	}
	topK := int32(1)
	resp, err := c.Classify(context.Background(), &pb.ClassifyRequest{
		Model:  &pb.ModelSpec{Name: "classifier"},
		Images: []*pb.Image{client.ImageOf(decoded)},
		TopK:   &topK,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Model.Name, resp.Classifications[0].Predictions[0].Label)
	// Output: classifier Ankle boot
}

// Describe a model: its role, its input and its labels.
func ExampleClient_GetModel() {
	c, err := client.New(addr())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	m, err := c.GetModel(context.Background(), "classifier", 0)
	if err != nil {
		log.Fatal(err)
	}
	v := m.Versions[0]
	for _, sig := range v.Signatures {
		if sig.Name == "serving_default" {
			in := sig.Inputs[0]
			fmt.Println(m.Role, in.Name, in.Dtype, len(in.Shape), "dimensions")
		}
	}
	fmt.Println(len(v.Labels), "labels:", v.Labels[0], "...", v.Labels[len(v.Labels)-1])
	// Output:
	// MODEL_ROLE_CLASSIFIER images uint8 4 dimensions
	// 10 labels: T-shirt/top ... Ankle boot
}

// Check that the server is up, as a load balancer would.
func ExampleClient_Health() {
	c, err := client.New(addr())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	st, err := c.Health(context.Background(), "")
	fmt.Println(st, err)
	// Output: SERVING <nil>
}

// Balance calls round-robin over several servers; UNAVAILABLE answers of the
// read-only calls are retried on the others.
func ExampleNew_roundRobin() {
	c, err := client.New(addr() + "," + addr())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	models, err := c.ListModels(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(models[0].Name)
	// Output: classifier
}

// Classify live video: frames come from an iterator, results arrive in frame order
// through the callback.
func ExampleClient_ClassifyStream() {
	c, err := client.New(addr())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	img, err := client.ImageFile(bootPNG())
	if err != nil {
		log.Fatal(err)
	}
	camera := func(yield func(*pb.Image) bool) { // a real camera yields until ctx ends
		for range 3 {
			if !yield(img) {
				return
			}
		}
	}
	// BLOCK answers every frame; a live camera would rather use LATEST, which skips
	// frames the server cannot keep up with.
	cfg := &pb.ClassifyStreamConfig{Options: &pb.StreamOptions{CameraId: "door", Policy: pb.FramePolicy_FRAME_POLICY_BLOCK}}
	err = c.ClassifyStream(context.Background(), cfg, client.Frames(camera), func(m *pb.ClassifyStreamResponse) error {
		if r := m.GetResult(); r != nil {
			fmt.Println(r.FrameId, r.GetClassification().GetPredictions()[0].GetLabel())
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// 1 Ankle boot
	// 2 Ankle boot
	// 3 Ankle boot
}
