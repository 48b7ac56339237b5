package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atelier-vision/atelier/internal/batching"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// streamRun is everything one ClassifyStream answered.
type streamRun struct {
	results   []*pb.ClassifyFrameResult
	latencies []time.Duration // per result: receipt time minus the frame's capture time
	summaries []*pb.TallySummary
	alerts    []*pb.Alert
	err       error // the stream's status; nil for OK
}

// classifyStream sends cfg and then frames on one ClassifyStream, from its own
// goroutine, and collects the answers until the server ends the stream. With stamp,
// each frame's capture time is set just before it is sent.
func classifyStream(ctx context.Context, conn *grpc.ClientConn, cfg *pb.ClassifyStreamConfig, frames []*pb.StreamFrame, stamp bool) streamRun {
	var run streamRun
	s, err := pb.NewClassifyServiceClient(conn).ClassifyStream(ctx)
	if err != nil {
		run.err = err
		return run
	}
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		if s.Send(&pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Config{Config: cfg}}) != nil {
			return
		}
		for _, f := range frames {
			if stamp {
				f.CaptureTime = timestamppb.Now()
			}
			if s.Send(&pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Frame{Frame: f}}) != nil {
				return
			}
		}
		s.CloseSend()
	}()
	for {
		m, err := s.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				run.err = err
			}
			break
		}
		switch m := m.Message.(type) {
		case *pb.ClassifyStreamResponse_Result:
			run.results = append(run.results, m.Result)
			run.latencies = append(run.latencies, time.Since(frameTime(frames, m.Result.FrameId)))
		case *pb.ClassifyStreamResponse_Summary:
			run.summaries = append(run.summaries, m.Summary)
		case *pb.ClassifyStreamResponse_Alert:
			run.alerts = append(run.alerts, m.Alert)
		}
	}
	<-sent
	return run
}

// frameTime returns the capture time of the frame with id (frames are numbered from 0).
func frameTime(frames []*pb.StreamFrame, id uint64) time.Time {
	if id < uint64(len(frames)) && frames[id].FrameId == id && frames[id].CaptureTime != nil {
		return frames[id].CaptureTime.AsTime()
	}
	return time.Now()
}

// rawFrame turns 28x28 grey pixels into a raw RGB image.
func rawFrame(pix []uint8) *pb.Image {
	rgb := make([]byte, 0, len(pix)*3)
	for _, v := range pix {
		rgb = append(rgb, v, v, v)
	}
	return &pb.Image{Data: &pb.Image_Raw{Raw: &pb.RawImage{Rgb: rgb, Width: 28, Height: 28}}}
}

// numbered makes frames 0..len(images)-1 of images, captured every 100 ms from start.
func numbered(images []*pb.Image, start time.Time) []*pb.StreamFrame {
	out := make([]*pb.StreamFrame, len(images))
	for i, img := range images {
		out[i] = &pb.StreamFrame{FrameId: uint64(i), CaptureTime: timestamppb.New(start.Add(time.Duration(i) * 100 * time.Millisecond)), Image: img}
	}
	return out
}

// TestClassifyStreamBlockKeepsOrder streams 200 test items under the block policy
// with a tiny queue: every frame is answered, in order, with the same top category
// as a unary Classify of the same picture; summaries come at the interval and at the end.
func TestClassifyStreamBlockKeepsOrder(t *testing.T) {
	_, conn := startApp(t)
	set := testSet(t)
	const n = 200
	images := make([]*pb.Image, n)
	for i := range images {
		images[i] = encoded(greyPNG(t, set.Images[i]))
	}
	want, err := pb.NewClassifyServiceClient(conn).Classify(ctxFor(t, time.Minute), &pb.ClassifyRequest{TopK: proto.Int32(1), Images: images[:64]})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &pb.ClassifyStreamConfig{TopK: proto.Int32(2), Options: &pb.StreamOptions{
		CameraId: "aisle-3", Policy: pb.FramePolicy_FRAME_POLICY_BLOCK, QueueSize: 1,
		SummaryInterval: durationpb.New(20 * time.Millisecond),
	}}
	run := classifyStream(ctxFor(t, time.Minute), conn, cfg, numbered(images, time.Now()), false)
	if run.err != nil {
		t.Fatalf("stream: %v", run.err)
	}
	if len(run.results) != n {
		t.Fatalf("got %d results, want %d", len(run.results), n)
	}
	for i, r := range run.results {
		if r.FrameId != uint64(i) || r.Skipped || r.Error != nil || len(r.Classification.GetPredictions()) != 2 {
			t.Fatalf("result %d: got %v, want frame %d classified with 2 predictions", i, r, i)
		}
		if i < 64 && r.Classification.Predictions[0].Label != want.Classifications[i].Predictions[0].Label {
			t.Fatalf("frame %d: got %q, want %q as from Classify", i, r.Classification.Predictions[0].Label, want.Classifications[i].Predictions[0].Label)
		}
	}
	last := run.summaries[len(run.summaries)-1]
	if len(run.summaries) < 2 || last.Frames != n || last.CameraId != "aisle-3" {
		t.Fatalf("got %d summaries, the last %v; want periodic ones and a final one over %d frames", len(run.summaries), last, n)
	}
	t.Logf("%d frames answered in order, %d summaries", n, len(run.summaries))
}

// TestClassifyStreamLatestSkips sends raw frames as fast as the client can, far faster
// than the model serves them, under the latest policy with a queue of 2: every frame
// is answered in order, most as skipped, and the served ones never wait long.
func TestClassifyStreamLatestSkips(t *testing.T) {
	_, conn := startApp(t)
	set := testSet(t)
	const n = 3000
	images := make([]*pb.Image, n)
	for i := range images {
		images[i] = rawFrame(set.Images[i%100])
	}
	frames := numbered(images, time.Now())
	// A first session run is slow; make it before the clock starts.
	if _, err := pb.NewClassifyServiceClient(conn).Classify(ctxFor(t, time.Minute), &pb.ClassifyRequest{Images: images[:1]}); err != nil {
		t.Fatal(err)
	}
	cfg := &pb.ClassifyStreamConfig{Options: &pb.StreamOptions{Policy: pb.FramePolicy_FRAME_POLICY_LATEST, QueueSize: 2}}
	start := time.Now()
	run := classifyStream(ctxFor(t, time.Minute), conn, cfg, frames, true)
	if run.err != nil {
		t.Fatalf("stream: %v", run.err)
	}
	if len(run.results) != n {
		t.Fatalf("got %d results, want %d", len(run.results), n)
	}
	var served []time.Duration
	for i, r := range run.results {
		if r.FrameId != uint64(i) {
			t.Fatalf("result %d is for frame %d, want %d", i, r.FrameId, i)
		}
		if r.Error != nil || (!r.Skipped && r.Classification == nil) {
			t.Fatalf("frame %d: got %v, want classified or skipped", i, r)
		}
		if !r.Skipped {
			served = append(served, run.latencies[i])
		}
	}
	slices.Sort(served)
	p50, worst := served[len(served)/2], served[len(served)-1]
	t.Logf("%d frames in %v: %d served (latency p50 %v, max %v), %d skipped",
		n, time.Since(start).Round(time.Millisecond), len(served), p50, worst, n-len(served))
	if skipped := n - len(served); skipped < n/2 {
		t.Errorf("got %d skipped frames, want at least %d", skipped, n/2)
	}
	if worst > time.Second {
		t.Errorf("a served frame waited %v, want under 1s", worst)
	}
}

// TestClassifyStreamBadFrames sends bad frames between good ones: each bad one gets a
// per-frame error with the code a unary call would get, and the stream goes on.
func TestClassifyStreamBadFrames(t *testing.T) {
	_, conn := startApp(t)
	good := encoded(greyPNG(t, testSet(t).Images[0]))
	var jpg bytes.Buffer
	jpeg.Encode(&jpg, image.NewGray(image.Rect(0, 0, 64, 64)), nil)
	cases := []struct {
		name    string
		frame   *pb.StreamFrame
		message string // "" for a good frame
	}{
		{"good", &pb.StreamFrame{Image: good}, ""},
		{"corrupt jpeg", &pb.StreamFrame{Image: encoded(append([]byte{0xff, 0xd8, 0xff, 0xe0}, make([]byte, 40)...))}, "JPEG"},
		{"truncated jpeg", &pb.StreamFrame{Image: encoded(jpg.Bytes()[:jpg.Len()/2])}, "truncated"},
		{"wrong raw size", &pb.StreamFrame{Image: &pb.Image{Data: &pb.Image_Raw{Raw: &pb.RawImage{Rgb: make([]byte, 100), Width: 28, Height: 28}}}}, "needs 2352 bytes"},
		{"no image", &pb.StreamFrame{}, "has no image"},
		{"empty image", &pb.StreamFrame{Image: &pb.Image{}}, "set image.encoded"},
		{"bad capture time", &pb.StreamFrame{Image: good, CaptureTime: &timestamppb.Timestamp{Nanos: -1}}, "capture_time"},
		{"good again", &pb.StreamFrame{Image: good}, ""},
	}
	frames := make([]*pb.StreamFrame, len(cases))
	for i, tc := range cases {
		frames[i] = tc.frame
		frames[i].FrameId = uint64(i)
	}
	run := classifyStream(ctxFor(t, time.Minute), conn, &pb.ClassifyStreamConfig{}, frames, false)
	if run.err != nil {
		t.Fatalf("stream: %v", run.err)
	}
	if len(run.results) != len(cases) {
		t.Fatalf("got %d results, want %d", len(run.results), len(cases))
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run.results[i]
			switch {
			case r.FrameId != uint64(i):
				t.Fatalf("got frame id %d, want %d", r.FrameId, i)
			case tc.message == "" && (r.Error != nil || r.Classification == nil):
				t.Fatalf("got %v, want a classification", r)
			case tc.message != "" && (codes.Code(r.Error.GetCode()) != codes.InvalidArgument || !strings.Contains(r.Error.GetMessage(), tc.message)):
				t.Fatalf("got error %v, want InvalidArgument mentioning %q", r.Error, tc.message)
			}
		})
	}
}

// TestClassifyStreamProtocolErrors breaks the protocol or sends a bad config: the
// stream ends with the code, the message names the problem.
func TestClassifyStreamProtocolErrors(t *testing.T) {
	_, conn := startApp(t)
	good := &pb.StreamFrame{Image: encoded(greyPNG(t, testSet(t).Images[0]))}
	config := func(c *pb.ClassifyStreamConfig) *pb.ClassifyStreamRequest {
		return &pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Config{Config: c}}
	}
	frame := &pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Frame{Frame: good}}
	opts := func(o *pb.StreamOptions) *pb.ClassifyStreamRequest {
		return config(&pb.ClassifyStreamConfig{Options: o})
	}
	watched := []string{"Dress"}
	cases := []struct {
		name    string
		send    []*pb.ClassifyStreamRequest
		code    codes.Code
		message string
	}{
		{"no config", []*pb.ClassifyStreamRequest{frame}, codes.InvalidArgument, "first message must be the stream's config"},
		{"nothing at all", nil, codes.InvalidArgument, "ended before its config"},
		{"config twice", []*pb.ClassifyStreamRequest{config(&pb.ClassifyStreamConfig{}), frame, config(&pb.ClassifyStreamConfig{})}, codes.InvalidArgument, "message 2 after the config is not a frame"},
		{"empty message", []*pb.ClassifyStreamRequest{config(&pb.ClassifyStreamConfig{}), {}}, codes.InvalidArgument, "not a frame"},
		{"top_k zero", []*pb.ClassifyStreamRequest{config(&pb.ClassifyStreamConfig{TopK: proto.Int32(0)})}, codes.InvalidArgument, "top_k 0"},
		{"queue too big", []*pb.ClassifyStreamRequest{opts(&pb.StreamOptions{QueueSize: 1 << 31})}, codes.InvalidArgument, "queue_size"},
		{"unknown policy", []*pb.ClassifyStreamRequest{opts(&pb.StreamOptions{Policy: 9})}, codes.InvalidArgument, "policy"},
		{"negative window", []*pb.ClassifyStreamRequest{opts(&pb.StreamOptions{TallyWindow: durationpb.New(-time.Second)})}, codes.InvalidArgument, "tally_window"},
		{"summaries too often", []*pb.ClassifyStreamRequest{opts(&pb.StreamOptions{SummaryInterval: durationpb.New(time.Microsecond)})}, codes.InvalidArgument, "summary_interval"},
		{"rule without categories", []*pb.ClassifyStreamRequest{opts(&pb.StreamOptions{AlertRules: []*pb.AlertRule{{Name: "x"}}})}, codes.InvalidArgument, "categories"},
		{"rule score above 1", []*pb.ClassifyStreamRequest{opts(&pb.StreamOptions{AlertRules: []*pb.AlertRule{{Categories: watched, MinScore: 1.5}}})}, codes.InvalidArgument, "min_score"},
		{"unknown model", []*pb.ClassifyStreamRequest{config(&pb.ClassifyStreamConfig{Model: &pb.ModelSpec{Name: "no-such-model"}}), frame}, codes.NotFound, "no-such-model"},
		{"model version and label", []*pb.ClassifyStreamRequest{config(&pb.ClassifyStreamConfig{Model: &pb.ModelSpec{Version: 1, VersionLabel: "stable"}}), frame},
			codes.InvalidArgument, "set model.version or model.version_label, not both"},
		{"camera id too long", []*pb.ClassifyStreamRequest{opts(&pb.StreamOptions{CameraId: strings.Repeat("c", 4096)})}, codes.InvalidArgument, "camera_id of 4096 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := pb.NewClassifyServiceClient(conn).ClassifyStream(ctxFor(t, time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tc.send {
				if s.Send(m) != nil {
					break // the server has ended the stream; Recv says why
				}
			}
			s.CloseSend()
			for err == nil {
				_, err = s.Recv()
			}
			if st := status.Convert(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.message) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.code, tc.message)
			}
		})
	}
}

// TestStreamsShareBatches runs eight streams at once next to unary calls: the
// classifier's session runs hold more than one frame on average.
func TestStreamsShareBatches(t *testing.T) {
	a, conn := startAppKeep(t)
	set := testSet(t)
	images := make([]*pb.Image, 100)
	for i := range images {
		images[i] = rawFrame(set.Images[i])
	}
	var wg sync.WaitGroup
	errs := make(chan error, 9)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if run := classifyStream(ctxFor(t, time.Minute), conn, &pb.ClassifyStreamConfig{}, numbered(images, time.Now()), false); run.err != nil || len(run.results) != len(images) {
				errs <- fmt.Errorf("stream: %v, %d results", run.err, len(run.results))
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20 {
			if _, err := pb.NewClassifyServiceClient(conn).Classify(ctxFor(t, time.Minute), &pb.ClassifyRequest{Images: images[i : i+1]}); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	m, err := a.repo.Get(models.Spec{Name: "classifier"}, models.RoleClassifier)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Engine.(*batching.Engine).Stats().Snapshot()
	runs, rows := c.Runs, c.Rows
	t.Logf("%d frames and calls in %d session runs: %.2f per run", rows, runs, float64(rows)/float64(runs))
	if rows < 820 || float64(rows)/float64(runs) < 1.5 {
		t.Fatalf("got %d rows in %d runs, want 820 rows at more than 1.5 per run", rows, runs)
	}
}

// TestCancelledStreamsLeaveNoGoroutines opens 60 streams and watchers and ends them
// every way: the client cancels mid-stream, the server ends them for a protocol
// violation, they finish; afterwards no goroutine of theirs remains.
func TestCancelledStreamsLeaveNoGoroutines(t *testing.T) {
	_, conn := startApp(t)
	set := testSet(t)
	images := make([]*pb.Image, 400)
	for i := range images {
		images[i] = rawFrame(set.Images[i%50])
	}
	// Warm up the connection, so that only the streams' goroutines are new.
	if run := classifyStream(ctxFor(t, time.Minute), conn, &pb.ClassifyStreamConfig{}, numbered(images[:5], time.Now()), false); run.err != nil {
		t.Fatal(run.err)
	}
	before := goleak.IgnoreCurrent()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ended := map[codes.Code]int{}
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var err error
			switch i % 4 {
			case 0, 1: // the client cancels mid-stream, under either policy
				time.AfterFunc(time.Duration(5+i%20)*time.Millisecond, cancel)
				cfg := &pb.ClassifyStreamConfig{Options: &pb.StreamOptions{Policy: pb.FramePolicy(1 + i%2), QueueSize: 2}}
				err = classifyStream(ctx, conn, cfg, numbered(images, time.Now()), false).err
			case 2: // the server ends it: a second config after some frames
				err = violate(ctx, conn, 1+i%10)
			case 3: // a watcher that the client cancels
				w, werr := pb.NewAlertServiceClient(conn).WatchAlerts(ctx, &pb.WatchAlertsRequest{})
				if werr == nil {
					w.Header()
					cancel()
					_, werr = w.Recv()
				}
				err = werr
			}
			mu.Lock()
			ended[status.Code(err)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("streams ended with: %v", ended)
	if ended[codes.InvalidArgument] != 15 || ended[codes.Canceled]+ended[codes.OK] != 45 {
		t.Fatalf("got endings %v, want 15 InvalidArgument and 45 Canceled (or OK, if a stream finished first)", ended)
	}
	if err := goleak.Find(before); err != nil {
		t.Fatal(err)
	}
}

// violate sends a config, n frames and a second config, and returns the stream's end.
func violate(ctx context.Context, conn *grpc.ClientConn, n int) error {
	s, err := pb.NewClassifyServiceClient(conn).ClassifyStream(ctx)
	if err != nil {
		return err
	}
	config := &pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Config{Config: &pb.ClassifyStreamConfig{}}}
	frame := &pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Frame{Frame: &pb.StreamFrame{Image: rawFrame(make([]uint8, 784))}}}
	msgs := append([]*pb.ClassifyStreamRequest{config}, slices.Repeat([]*pb.ClassifyStreamRequest{frame}, n)...)
	for _, m := range append(msgs, config) {
		if s.Send(m) != nil {
			break
		}
	}
	for {
		if _, err := s.Recv(); err != nil {
			return err
		}
	}
}

// counts turns a summary's counts into a map.
func counts(s *pb.TallySummary) map[string]uint64 {
	m := map[string]uint64{}
	for _, c := range s.GetCounts() {
		m[c.Label] = c.Count
	}
	return m
}

// startAppKeep is startApp for the tests that look inside the app (batch counters).
func startAppKeep(t testing.TB) (*app, *grpc.ClientConn) {
	t.Helper()
	cfg, err := parseConfig([]string{"--model-dir", testenv.ModelDir(t, "classifier")}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, slog.New(slog.NewTextHandler(testLog{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.srv.SetServing(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.srv.GRPC.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		a.srv.Shutdown(5 * time.Second)
		<-done
		a.close()
	})
	return a, conn
}
