// Command detect prints every garment found in an image (DetectService/Detect): its
// coarse type, score, box and fine category.
//
//	go run ./examples/go/detect scene.png
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/atelier-vision/atelier/client"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

func main() {
	addr := flag.String("addr", envOr("ATELIER_ADDR", "localhost:8500"), "server address")
	minScore := flag.Float64("min-score", 0.5, "lowest detection score to print")
	flag.Parse()
	if flag.NArg() != 1 {
		fail(fmt.Errorf("usage: detect [-addr host:port] [-min-score S] IMAGE"))
	}
	c, err := client.New(*addr)
	if err != nil {
		fail(err)
	}
	defer c.Close()
	img, err := client.ImageFile(flag.Arg(0))
	if err != nil {
		fail(err)
	}
	ms := float32(*minScore)
	resp, err := c.Detect(context.Background(), &pb.DetectRequest{Image: img, MinScore: &ms})
	if err != nil {
		fail(err)
	}
	fmt.Printf("%d garments in %dx%d\n", len(resp.Detections), resp.ImageWidth, resp.ImageHeight)
	for _, d := range resp.Detections {
		b := d.Box
		label := ""
		if p := d.GetClassification().GetPredictions(); len(p) > 0 {
			label = p[0].Label
		}
		fmt.Printf("%s %.3f [%.0f %.0f %.0f %.0f] %s\n", d.GarmentType, d.Score, b.XMin, b.YMin, b.XMax, b.YMax, label)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "detect:", err)
	os.Exit(1)
}
