// Command health checks the server (grpc.health.v1.Health/Check) and exits 1 unless
// it is SERVING, as a load balancer or a deploy script would.
//
//	go run ./examples/go/health
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/atelier-vision/atelier/client"
)

func main() {
	addr := flag.String("addr", envOr("ATELIER_ADDR", "localhost:8500"), "server address")
	service := flag.String("service", "", "one service to check (empty: the whole server)")
	flag.Parse()
	c, err := client.New(*addr)
	if err != nil {
		fail(err)
	}
	defer c.Close()
	st, err := c.Health(context.Background(), *service)
	if err != nil {
		fail(err)
	}
	fmt.Println(st)
	if st != healthpb.HealthCheckResponse_SERVING {
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "health:", err)
	os.Exit(1)
}
