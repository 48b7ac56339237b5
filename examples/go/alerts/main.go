// Command alerts watches a camera's alerts (AlertService/WatchAlerts) while that
// camera streams an image with an alert rule on its category, and prints the alert.
//
//	go run ./examples/go/alerts -category "Ankle boot" docs/images/sample_boot.png
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/client"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

func main() {
	addr := flag.String("addr", envOr("ATELIER_ADDR", "localhost:8500"), "server address")
	category := flag.String("category", "Ankle boot", "category the rule watches")
	minScore := flag.Float64("min-score", 0.5, "lowest score that counts as seeing it")
	wait := flag.Duration("wait", 10*time.Second, "how long to wait for the alert")
	flag.Parse()
	if flag.NArg() != 1 {
		fail(fmt.Errorf("usage: alerts [-addr host:port] [-category C] IMAGE"))
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
	ctx, cancel := context.WithTimeout(context.Background(), *wait)
	defer cancel()

	// Watch first; the camera starts once the watch is in place.
	subscribed := make(chan struct{})
	watched := make(chan error, 1)
	go func() {
		watched <- c.WatchAlerts(ctx, &pb.WatchAlertsRequest{CameraIds: []string{"shop-window"}},
			func() { close(subscribed) },
			func(a *pb.Alert) error {
				fmt.Printf("alert %s: %s %.3f on %s frame %d\n", a.Rule, a.Label, a.Score, a.CameraId, a.FrameId)
				cancel() // one is enough for this example
				return nil
			})
	}()
	select {
	case <-subscribed:
	case err := <-watched:
		fail(err)
	}

	rule := &pb.AlertRule{Name: "watch", Categories: []string{*category}, MinScore: float32(*minScore)}
	cfg := &pb.ClassifyStreamConfig{Options: &pb.StreamOptions{CameraId: "shop-window", AlertRules: []*pb.AlertRule{rule}}}
	frames := func(yield func(*pb.Image) bool) {
		for range 3 {
			if !yield(img) {
				return
			}
		}
	}
	if err := c.ClassifyStream(ctx, cfg, client.Frames(frames), func(*pb.ClassifyStreamResponse) error { return nil }); err != nil && ctx.Err() == nil {
		fail(err)
	}
	err = <-watched
	if status.Code(err) == codes.DeadlineExceeded {
		fail(fmt.Errorf("no alert within %v", *wait))
	}
	if err != nil && status.Code(err) != codes.Canceled {
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
	fmt.Fprintln(os.Stderr, "alerts:", err)
	os.Exit(1)
}
