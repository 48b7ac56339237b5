// Command generate draws new designs of a category (GenerateService/Generate) and
// writes them as PNG files; the same seed draws the same designs.
//
//	go run ./examples/go/generate -category Dress -count 4 -out /tmp/designs
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/atelier-vision/atelier/client"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

func main() {
	addr := flag.String("addr", envOr("ATELIER_ADDR", "localhost:8500"), "server address")
	category := flag.String("category", "Dress", "category to draw")
	count := flag.Int("count", 4, "designs to draw")
	seed := flag.Uint64("seed", 42, "seed of the first design")
	out := flag.String("out", ".", "folder for the PNG files")
	flag.Parse()
	c, err := client.New(*addr)
	if err != nil {
		fail(err)
	}
	defer c.Close()
	resp, err := c.Generate(context.Background(), &pb.GenerateRequest{Category: *category, Count: uint32(*count), Seed: *seed})
	if err != nil {
		fail(err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fail(err)
	}
	for _, img := range resp.Images {
		path := filepath.Join(*out, fmt.Sprintf("design-%d.png", img.Seed))
		if err := os.WriteFile(path, img.Png, 0o644); err != nil {
			fail(err)
		}
		fmt.Println(path)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "generate:", err)
	os.Exit(1)
}
