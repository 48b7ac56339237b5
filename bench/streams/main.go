// Command streams benchmarks Atelier's ClassifyStream on Fashion-MNIST frames (PNG,
// 28x28, the embedded classifier). It prints one JSON line per run:
//
//   - "stream": 1, 4 and 16 streams under the block policy, each keeping -window
//     frames in flight (sent, not yet answered): frames/s in total and per stream,
//     latency from sending a frame to its result (p50, p99);
//   - "unary": one-image Classify calls, closed loop, with as many calls in flight
//     as the streams had frames in the model at once (stream.Depth per stream), for
//     the ratio streams/unary;
//   - "latest-2x": the same numbers of streams under the latest policy, each sending
//     at twice its share of the measured block throughput: the share of frames
//     skipped, the frames served per second and the latency of the served ones.
//
// Block and unary levels run -repeat times, interleaved, and keep their best run, as
// the machine may be busy with other work. With -notes FILE it also writes the tables into FILE between the markers
// "<!-- streams:begin -->" and "<!-- streams:end -->" (bench/report.py appends
// docs/BENCHMARKS.notes.md to docs/BENCHMARKS.md).
//
//	streams -addr 127.0.0.1:18500 -streams 1,4,16 -duration 10s -notes docs/BENCHMARKS.notes.md
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/atelier-vision/atelier/internal/fashionmnist"
	"github.com/atelier-vision/atelier/internal/stream"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// Line is one run's result.
type Line struct {
	Label   string  `json:"label"`   // stream, unary or latest-2x
	Streams int     `json:"streams"` // streams, or for unary the calls in flight
	Seconds float64 `json:"seconds"`
	// Offered is the frames/s sent in total (latest-2x only).
	Offered float64 `json:"offered_per_second,omitempty"`
	Sent    int     `json:"sent"`
	Served  int     `json:"served"` // answered with a classification
	Skipped int     `json:"skipped"`
	Failed  int     `json:"failed"`
	// Total is served frames per second, over all streams.
	Total float64 `json:"frames_per_second"`
	// PerStream is served frames per second per stream: mean, min and max.
	PerStream    float64 `json:"per_stream_mean"`
	PerStreamMin float64 `json:"per_stream_min"`
	PerStreamMax float64 `json:"per_stream_max"`
	SkippedShare float64 `json:"skipped_share"`
	P50          float64 `json:"p50_ms"`
	P99          float64 `json:"p99_ms"`
	FirstError   string  `json:"first_error,omitempty"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8500", "server address")
	levels := flag.String("streams", "1,4,16", "comma-separated numbers of streams")
	duration := flag.Duration("duration", 10*time.Second, "measured time per run")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured time before each run")
	window := flag.Int("window", 12, "frames each stream keeps in flight under the block policy (12 fills the server's queue of 8 and pipeline of 4)")
	notes := flag.String("notes", "", "write the tables into this markdown file, between the streams markers")
	wait := flag.Duration("wait", time.Minute, "how long to wait for the server to be SERVING")
	repeat := flag.Int("repeat", 2, "runs of each block and unary level; the best is kept (the machine may be shared)")
	flag.Parse()
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	if err := waitServing(conn, *wait); err != nil {
		fail(err)
	}
	frames, err := fashionFrames(200)
	if err != nil {
		fail(err)
	}
	b := bench{conn: conn, frames: frames, warmup: *warmup, duration: *duration, window: *window}
	var lines []Line
	emit := func(l Line) {
		out, _ := json.Marshal(l)
		fmt.Println(string(out))
		lines = append(lines, l)
		if l.Served == 0 {
			fail(fmt.Errorf("%s with %d streams served nothing: %s", l.Label, l.Streams, l.FirstError))
		}
	}
	for _, f := range strings.Split(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fail(fmt.Errorf("bad number of streams %q", f))
		}
		var block, unary Line
		for range *repeat { // interleaved, so that both see the same background load
			block = best(block, b.streams(n, pb.FramePolicy_FRAME_POLICY_BLOCK, 0))
			unary = best(unary, b.unary(n*min(*window, stream.Depth)))
		}
		emit(block)
		emit(unary)
		emit(b.streams(n, pb.FramePolicy_FRAME_POLICY_LATEST, 2*block.Total))
	}
	if *notes != "" {
		if err := writeNotes(*notes, lines, *window, *repeat, *duration); err != nil {
			fail(err)
		}
	}
}

// best returns the line with the higher throughput.
func best(a, b Line) Line {
	if b.Total > a.Total {
		return b
	}
	return a
}

// waitServing polls the health service until the server is SERVING.
func waitServing(conn *grpc.ClientConn, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.Status == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server not SERVING after %v (last: %v)", d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// fashionFrames encodes the first n Fashion-MNIST test items as PNG frames.
func fashionFrames(n int) ([]*pb.Image, error) {
	set, err := fashionmnist.Load("", "test")
	if err != nil {
		return nil, err
	}
	out := make([]*pb.Image, n)
	for i := range out {
		data, err := pngOf(set.Images[i])
		if err != nil {
			return nil, err
		}
		out[i] = &pb.Image{Data: &pb.Image_Encoded{Encoded: data}}
	}
	return out, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "streams:", err)
	os.Exit(1)
}
