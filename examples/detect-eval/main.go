// Command detect-eval scores the detector of a running Atelier server on held-out
// scenes: mAP@0.5, recall, and the fine-category accuracy of the garments found.
//
//	(cd savedmodels && ../.venv/bin/python -m atelier_train.scenes --heldout 200 --out /tmp/scenes)
//	go run ./examples/detect-eval --addr localhost:8500 --scenes /tmp/scenes
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/atelier-vision/atelier/bench/detecteval"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

func main() {
	addr := flag.String("addr", "localhost:8500", "the server's address")
	dir := flag.String("scenes", "", "folder of held-out scenes and their ground_truth.json")
	minScore := flag.Float64("min-score", detecteval.DefaultOptions.MinScore, "score a detection needs to count for recall and fine accuracy")
	concurrency := flag.Int("concurrency", detecteval.DefaultOptions.Concurrency, "requests in flight at once")
	tiling := flag.String("tiling", "auto", "whether the server also searches tiles of large scenes: auto, off or on")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	flag.Parse()
	opt := detecteval.Options{MinScore: *minScore, Concurrency: *concurrency, Timeout: time.Minute}
	t, ok := pb.Tiling_value["TILING_"+strings.ToUpper(*tiling)]
	if !ok {
		fmt.Fprintf(os.Stderr, "detect-eval: --tiling %q is not auto, off or on\n", *tiling)
		os.Exit(2)
	}
	opt.Tiling = pb.Tiling(t)
	if err := run(*addr, *dir, opt, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "detect-eval:", err)
		os.Exit(1)
	}
}

func run(addr, dir string, opt detecteval.Options, asJSON bool) error {
	if dir == "" {
		return fmt.Errorf("--scenes is required (write some with `python -m atelier_train.scenes --heldout 200 --out DIR`)")
	}
	truth, err := detecteval.Load(dir)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	start := time.Now()
	report, _, err := detecteval.Run(context.Background(), pb.NewDetectServiceClient(conn), truth, opt)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(report)
	}
	fmt.Printf("%s\n(%s, %.1f ms per scene)\n", report, time.Since(start).Round(time.Millisecond),
		float64(time.Since(start).Milliseconds())/float64(max(report.Scenes, 1)))
	return nil
}
