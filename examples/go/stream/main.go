// Command stream sends images as one camera's video frames on a ClassifyStream and
// prints every result, in frame order, with the stream's tally summary.
//
//	go run ./examples/go/stream -camera door docs/images/*.png
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/atelier-vision/atelier/client"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

func main() {
	addr := flag.String("addr", envOr("ATELIER_ADDR", "localhost:8500"), "server address")
	camera := flag.String("camera", "door", "camera id")
	repeat := flag.Int("repeat", 1, "send the images this many times")
	flag.Parse()
	if flag.NArg() == 0 {
		fail(fmt.Errorf("usage: stream [-addr host:port] [-camera ID] [-repeat N] IMAGE..."))
	}
	c, err := client.New(*addr)
	if err != nil {
		fail(err)
	}
	defer c.Close()
	var images []*pb.Image
	for _, path := range flag.Args() {
		img, err := client.ImageFile(path)
		if err != nil {
			fail(err)
		}
		images = append(images, img)
	}
	// The camera: any iterator of images. A real one would read frames until ctx ends.
	camera1 := func(yield func(*pb.Image) bool) {
		for range *repeat {
			for _, img := range images {
				if !yield(img) {
					return
				}
			}
		}
	}
	topK := int32(1)
	cfg := &pb.ClassifyStreamConfig{TopK: &topK, Options: &pb.StreamOptions{
		CameraId: *camera, SummaryInterval: durationpb.New(50 * time.Millisecond)}}
	err = c.ClassifyStream(context.Background(), cfg, client.Frames(camera1), func(m *pb.ClassifyStreamResponse) error {
		switch {
		case m.GetResult() != nil:
			r := m.GetResult()
			if r.Error != nil {
				fmt.Printf("frame %d error %s\n", r.FrameId, r.Error.Message)
			} else if p := r.GetClassification().GetPredictions(); len(p) > 0 {
				fmt.Printf("frame %d %s %.6f\n", r.FrameId, p[0].Label, p[0].Score)
			}
		case m.GetSummary() != nil:
			fmt.Printf("summary %s %d frames\n", m.GetSummary().CameraId, m.GetSummary().Frames)
		case m.GetAlert() != nil:
			fmt.Printf("alert %s %s\n", m.GetAlert().Rule, m.GetAlert().Label)
		}
		return nil
	})
	if err != nil {
		fail(err)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "stream:", err)
	os.Exit(1)
}
