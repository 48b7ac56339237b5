// Command loadgen drives an atelier.v1.ClassifyService with closed-loop load: at each
// concurrency level, that many goroutines send one-image Classify requests back to back
// for a fixed time. It prints one JSON line per level with throughput and latency
// percentiles; -protocol v2 sends the same images as Open Inference Protocol
// ModelInfer calls to the classifier's image model instead (docs/INFERENCE.md); -protocol
// stream sends them as raw frames on ClassifyStreams, one stream per goroutine and one
// frame in flight on each, as cameras do; with -metrics, also the server's CPU per request and mean batch size,
// from its /metrics before and after the level. With -raw-model it instead times the
// in-process path a request takes without gRPC: decode, resize and one session run of
// batch 1; with -raw-cpu it measures the CPU that path costs per image: decode and
// resize, and a session run at each batch size.
//
//	loadgen -addr 127.0.0.1:8500 -images DIR -concurrency 1,4,16,64 -duration 15s -label atelier
//	loadgen -addr 127.0.0.1:8500 -images DIR -concurrency 1,16 -protocol v2 -label v2
//	loadgen -addr 127.0.0.1:8500 -metrics http://127.0.0.1:9500/metrics -images DIR -concurrency 32
//	loadgen -raw-model savedmodels/classifier-full/1 -images DIR -runs 30
//	loadgen -raw-cpu savedmodels/classifier/1 -images DIR
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/atelier-vision/atelier/client"
	"github.com/atelier-vision/atelier/internal/imageio"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

// Level is the result of one concurrency level.
type Level struct {
	Label       string  `json:"label"`
	Concurrency int     `json:"concurrency"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	Seconds     float64 `json:"seconds"`
	Throughput  float64 `json:"images_per_second"`
	P50         float64 `json:"p50_ms"`
	P95         float64 `json:"p95_ms"`
	P99         float64 `json:"p99_ms"`
	FirstError  string  `json:"first_error,omitempty"`
	// CPUPerRequest is the server process's CPU time (all threads) per answered
	// request, in microseconds; SessionCPUPerRequest the part of it spent running
	// TensorFlow sessions (atelier_tensorflow_cpu_seconds_total); MeanBatch the rows per
	// session run. All need -metrics.
	CPUPerRequest        float64 `json:"cpu_us_per_request,omitempty"`
	SessionCPUPerRequest float64 `json:"session_cpu_us_per_request,omitempty"`
	// GCCPUPerRequest is the Go garbage collector's CPU per request as the Go runtime
	// estimates it (go_cpu_classes_gc_total_cpu_seconds_total), and GCCyclesPerSecond
	// how often it collected.
	GCCPUPerRequest   float64 `json:"gc_cpu_us_per_request,omitempty"`
	GCCyclesPerSecond float64 `json:"gc_cycles_per_second,omitempty"`
	MeanBatch         float64 `json:"mean_batch,omitempty"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8500", "server address")
	dir := flag.String("images", "", "folder of JPEG or PNG files to send (searched recursively)")
	levels := flag.String("concurrency", "1,4,16,64", "comma-separated concurrency levels")
	duration := flag.Duration("duration", 15*time.Second, "measured time per level")
	warmup := flag.Duration("warmup", 3*time.Second, "unmeasured load before each level")
	label := flag.String("label", "atelier", "label for the output lines")
	model := flag.String("model", "", "model name to ask for (empty: the server's default)")
	rawModel := flag.String("raw-model", "", "time decode+resize+run in-process on this SavedModel instead")
	runs := flag.Int("runs", 30, "runs for -raw-model")
	tlsCA := flag.String("tls-ca", "", "connect with TLS, trusting this PEM CA")
	tlsCert := flag.String("tls-cert", "", "PEM client certificate (mTLS)")
	tlsKey := flag.String("tls-key", "", "PEM key of -tls-cert")
	token := flag.String("token", "", "bearer token for every call")
	rawCPU := flag.String("raw-cpu", "", "measure decode and session CPU per image in-process on this SavedModel instead")
	metricsURL := flag.String("metrics", "", "the server's /metrics URL, to report its CPU per request and mean batch")
	protocol := flag.String("protocol", "native", "native: atelier.v1 Classify; raw: the same with each image sent as a raw RGB frame; stream: raw RGB frames on one ClassifyStream per concurrent client, one frame in flight each; v2: inference.GRPCInferenceService ModelInfer on <model>_image; health: grpc.health.v1 Check, the server's cost of a call without a model")
	flag.Parse()
	images, err := loadImages(*dir)
	if err != nil {
		fail(err)
	}
	if *rawCPU != "" {
		if err := rawCPUCost(*rawCPU, images); err != nil {
			fail(err)
		}
		return
	}
	if *rawModel != "" {
		if err := raw(*rawModel, images, *runs); err != nil {
			fail(err)
		}
		return
	}
	dial := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if *tlsCA != "" {
		cfg, err := client.TLSConfigFromFiles(*tlsCA, *tlsCert, *tlsKey)
		if err != nil {
			fail(err)
		}
		dial[0] = grpc.WithTransportCredentials(credentials.NewTLS(cfg))
	}
	if *token != "" {
		md := metadata.Pairs("authorization", "Bearer "+*token)
		dial = append(dial, grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return invoker(metadata.NewOutgoingContext(ctx, md), method, req, reply, cc, opts...)
		}))
	}
	conn, err := grpc.NewClient(*addr, dial...)
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	open, err := caller(conn, *protocol, *model)
	if err != nil {
		fail(err)
	}
	for _, f := range strings.Split(*levels, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 {
			fail(fmt.Errorf("bad concurrency %q", f))
		}
		drive(open, images, c, *warmup)
		before, err := scrape(*metricsURL)
		if err != nil {
			fail(err)
		}
		lv := drive(open, images, c, *duration)
		after, err := scrape(*metricsURL)
		if err != nil {
			fail(err)
		}
		lv.Label = *label
		if *metricsURL != "" && lv.Requests > 0 {
			lv.CPUPerRequest = (after.cpu - before.cpu) * 1e6 / float64(lv.Requests)
			lv.SessionCPUPerRequest = (after.session - before.session) * 1e6 / float64(lv.Requests)
			lv.GCCPUPerRequest = (after.gcCPU - before.gcCPU) * 1e6 / float64(lv.Requests)
			lv.GCCyclesPerSecond = (after.gcCycles - before.gcCycles) / lv.Seconds
			if runs := after.runs - before.runs; runs > 0 {
				lv.MeanBatch = (after.rows - before.rows) / runs
			}
		}
		out, _ := json.Marshal(lv)
		fmt.Println(string(out))
		if lv.Requests == 0 {
			fail(fmt.Errorf("no request succeeded at concurrency %d: %s", c, lv.FirstError))
		}
	}
}

// call sends one image as one request (or one frame) and waits for its answer.
type call func(ctx context.Context, image []byte) error

// opener starts one closed-loop client: its call, and what ends the client.
type opener func() (call, func(), error)

// caller returns the request loadgen sends: a one-image Classify with top_k 1; the
// same image as a raw RGB frame, by Classify or on a ClassifyStream of the client's own
// (block policy, top_k 1, the next frame sent once the last one's result came back); or
// the same image as a V2 ModelInfer on the image model asking for its top-1 label and
// score (BYTES raw input: a 4-byte little-endian length, then the file); or a health
// Check, which measures what a call costs the server without a model.
func caller(conn *grpc.ClientConn, protocol, model string) (opener, error) {
	unary := func(c call) opener { return func() (call, func(), error) { return c, func() {}, nil } }
	switch protocol {
	case "native":
		c := pb.NewClassifyServiceClient(conn)
		return unary(func(ctx context.Context, image []byte) error {
			_, err := c.Classify(ctx, &pb.ClassifyRequest{Model: &pb.ModelSpec{Name: model}, TopK: proto.Int32(1),
				Images: []*pb.Image{{Data: &pb.Image_Encoded{Encoded: image}}}})
			return err
		}), nil
	case "raw":
		c := pb.NewClassifyServiceClient(conn)
		frame := rawFrames()
		return unary(func(ctx context.Context, image []byte) error {
			raw, err := frame(image)
			if err != nil {
				return err
			}
			_, err = c.Classify(ctx, &pb.ClassifyRequest{Model: &pb.ModelSpec{Name: model}, TopK: proto.Int32(1),
				Images: []*pb.Image{{Data: &pb.Image_Raw{Raw: raw}}}})
			return err
		}), nil
	case "stream":
		c := pb.NewClassifyServiceClient(conn)
		frame := rawFrames()
		return func() (call, func(), error) { return openStream(c, model, frame) }, nil
	case "v2":
		if model == "" {
			model = "classifier"
		}
		c := oip.NewGRPCInferenceServiceClient(conn)
		return unary(func(ctx context.Context, image []byte) error {
			raw := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+len(image)), uint32(len(image)))
			_, err := c.ModelInfer(ctx, &oip.ModelInferRequest{ModelName: model + "_image",
				Inputs:           []*oip.ModelInferRequest_InferInputTensor{{Name: "image", Datatype: "BYTES", Shape: []int64{1}}},
				Outputs:          []*oip.ModelInferRequest_InferRequestedOutputTensor{{Name: "label"}, {Name: "score"}},
				RawInputContents: [][]byte{append(raw, image...)}})
			return err
		}), nil
	case "health":
		c := healthpb.NewHealthClient(conn)
		return unary(func(ctx context.Context, _ []byte) error {
			_, err := c.Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		}), nil
	}
	return nil, fmt.Errorf("-protocol %q: want native, raw, stream, v2 or health", protocol)
}

// rawFrames returns each image file as a raw RGB frame, decoded once per file.
func rawFrames() func(image []byte) (*pb.RawImage, error) {
	var mu sync.Mutex
	frames := map[*byte]*pb.RawImage{}
	return func(image []byte) (*pb.RawImage, error) {
		mu.Lock()
		defer mu.Unlock()
		if raw, ok := frames[&image[0]]; ok {
			return raw, nil
		}
		im, err := imageio.Decode(image, imageio.DefaultLimits)
		if err == nil {
			im, err = im.ToChannels(3)
		}
		if err != nil {
			return nil, err
		}
		raw := &pb.RawImage{Rgb: im.Pix, Width: uint32(im.Width), Height: uint32(im.Height)}
		frames[&image[0]] = raw
		return raw, nil
	}
}

// errStreamEnded marks a call that failed because its client's stream broke: the
// client stops instead of failing every later call at once.
var errStreamEnded = errors.New("stream ended")

// openStream opens one client's ClassifyStream. Its call sends a frame and reads up to
// that frame's result (passing over tally summaries); the stream outlives each call's
// context, and a call fails on a frame error, a result out of order or a broken stream.
func openStream(c pb.ClassifyServiceClient, model string, frame func([]byte) (*pb.RawImage, error)) (call, func(), error) {
	ctx, cancel := context.WithCancel(context.Background())
	st, err := c.ClassifyStream(ctx)
	if err == nil {
		err = st.Send(&pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Config{
			Config: &pb.ClassifyStreamConfig{Model: &pb.ModelSpec{Name: model}, TopK: proto.Int32(1)}}})
	}
	if err != nil {
		cancel()
		return nil, nil, err
	}
	var id uint64
	send := func(_ context.Context, image []byte) error {
		raw, err := frame(image)
		if err != nil {
			return err
		}
		id++
		if err := st.Send(&pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Frame{
			Frame: &pb.StreamFrame{FrameId: id, Image: &pb.Image{Data: &pb.Image_Raw{Raw: raw}}}}}); err != nil {
			_, err = st.Recv() // Send's io.EOF hides the status; Recv returns it
			return fmt.Errorf("%w: %v", errStreamEnded, err)
		}
		for {
			resp, err := st.Recv()
			if err != nil {
				return fmt.Errorf("%w: %v", errStreamEnded, err)
			}
			r := resp.GetResult()
			switch {
			case r == nil:
				continue // a tally summary
			case r.GetFrameId() != id:
				return fmt.Errorf("stream: result for frame %d, want %d", r.GetFrameId(), id)
			case r.GetError() != nil:
				return fmt.Errorf("stream: frame %d: %s", id, r.GetError().GetMessage())
			case r.GetClassification() == nil:
				return fmt.Errorf("stream: frame %d answered without a classification (skipped %v)", id, r.GetSkipped())
			}
			return nil
		}
	}
	return send, func() { _ = st.CloseSend(); cancel() }, nil
}

// drive runs c closed-loop clients for d and summarises their latencies.
func drive(open opener, images [][]byte, c int, d time.Duration) Level {
	var (
		mu        sync.Mutex
		latencies []float64
		errs      int
		firstErr  string
		wg        sync.WaitGroup
	)
	start := time.Now()
	stop := start.Add(d)
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			send, done, err := open()
			if err != nil {
				mu.Lock()
				if errs++; firstErr == "" {
					firstErr = err.Error()
				}
				mu.Unlock()
				return
			}
			defer done()
			var mine []float64
			for i := w; time.Now().Before(stop); i += c {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				t0 := time.Now()
				err := send(ctx, images[i%len(images)])
				cancel()
				if err != nil {
					mu.Lock()
					if errs++; firstErr == "" {
						firstErr = err.Error()
					}
					mu.Unlock()
					if errors.Is(err, errStreamEnded) {
						break
					}
					continue
				}
				mine = append(mine, float64(time.Since(t0).Microseconds())/1000)
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	sort.Float64s(latencies)
	return Level{Concurrency: c, Requests: len(latencies), Errors: errs, Seconds: secs,
		Throughput: float64(len(latencies)) / secs, P50: pct(latencies, 50), P95: pct(latencies, 95),
		P99: pct(latencies, 99), FirstError: firstErr}
}

func pct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func loadImages(dir string) ([][]byte, error) {
	if dir == "" {
		return nil, fmt.Errorf("-images is required")
	}
	var out [][]byte
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !slices.Contains([]string{".jpg", ".jpeg", ".png"}, strings.ToLower(filepath.Ext(path))) {
			return err
		}
		data, err := os.ReadFile(path)
		out = append(out, data)
		return err
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("no JPEG files under %s", dir)
	}
	return out, err
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(1)
}
