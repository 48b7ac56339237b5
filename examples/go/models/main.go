// Command models lists the loaded models (ModelService/ListModels) and each one's
// versions and labels (ModelService/GetModel).
//
//	go run ./examples/go/models
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/atelier-vision/atelier/client"
)

func main() {
	addr := flag.String("addr", envOr("ATELIER_ADDR", "localhost:8500"), "server address")
	flag.Parse()
	c, err := client.New(*addr)
	if err != nil {
		fail(err)
	}
	defer c.Close()
	ctx := context.Background()
	models, err := c.ListModels(ctx)
	if err != nil {
		fail(err)
	}
	for _, m := range models {
		info, err := c.GetModel(ctx, m.Name, 0)
		if err != nil {
			fail(err)
		}
		for _, v := range info.Versions {
			role := strings.ToLower(strings.TrimPrefix(info.Role.String(), "MODEL_ROLE_"))
			fmt.Printf("%s %d %s %d labels: %s\n", info.Name, v.Version, role, len(v.Labels), strings.Join(v.Labels, ", "))
		}
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "models:", err)
	os.Exit(1)
}
