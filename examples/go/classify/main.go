// Command classify prints the top categories of an image (ClassifyService/Classify).
//
//	go run ./examples/go/classify docs/images/sample_boot.png
//
// Each line is "label score", best first; -addr (or $ATELIER_ADDR) names the server.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/atelier-vision/atelier/client"
)

func main() {
	addr := flag.String("addr", envOr("ATELIER_ADDR", "localhost:8500"), "server address")
	topK := flag.Int("top-k", 3, "categories to print")
	flag.Parse()
	if flag.NArg() != 1 {
		fail(fmt.Errorf("usage: classify [-addr host:port] [-top-k N] IMAGE"))
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
	got, err := c.ClassifyImages(context.Background(), *topK, img)
	if err != nil {
		fail(err)
	}
	for _, p := range got[0].Predictions {
		fmt.Printf("%s %.6f\n", p.Label, p.Score)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "classify:", err)
	os.Exit(1)
}
