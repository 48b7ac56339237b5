package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atelier-vision/atelier/internal/classify"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/stream"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// The streaming RPCs as a hostile or broken client uses them: it never reads, it
// half-closes or cancels with frames in flight, it sends odd capture times, frame ids
// and names, and it floods or stalls the alert watchers.

// edgeClassifier is a classify core safe for concurrent frames (fakeClassifier records
// its last request, unsynchronised). Each image gets top_k predictions, the first a
// Dress at 0.75, the others under labels of pad bytes (so that a few results fill
// gRPC's flow-control windows). With hold set it waits in the model until its caller
// leaves; with jitter it takes a random time up to that.

type edgeClassifier struct {
	pad    int
	hold   atomic.Bool
	jitter time.Duration

	images    atomic.Int64 // images classified
	inModel   atomic.Int64 // frames waiting in the model now (hold)
	cancelled atomic.Int64 // frames whose caller left while they were in the model
}

func (c *edgeClassifier) Classify(ctx context.Context, req classify.Request) (classify.Result, error) {
	switch {
	case c.hold.Load():
		c.inModel.Add(1)
		<-ctx.Done()
		c.inModel.Add(-1)
		c.cancelled.Add(1)
		return classify.Result{}, ctx.Err()
	case c.jitter > 0:
		time.Sleep(rand.N(c.jitter))
	}
	res := classify.Result{Model: models.Spec{Name: "fake", Version: 3}}
	for range req.Images {
		c.images.Add(1)
		preds := []classify.Prediction{{Label: "Dress", Index: 3, Score: 0.75}}
		for i := 1; i < req.TopK; i++ {
			preds = append(preds, classify.Prediction{Label: fmt.Sprintf("%s%04d", strings.Repeat("p", c.pad), i), Index: i, Score: 0.1})
		}
		res.Predictions = append(res.Predictions, preds)
	}
	return res, nil
}

func (c *edgeClassifier) Labels(models.Spec) (map[string][]string, error) {
	return map[string][]string{"fake:3": {"Dress", "Coat"}}, nil
}

// heapInUseAfterGC returns the heap in use after a collection.
func heapInUseAfterGC() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// settledValue polls f until its value has not changed for 300 ms, and returns it:
// how a test sees that a client's sends are blocked for good.
func settledValue(t *testing.T, f func() int64) int64 {
	t.Helper()
	last, since := f(), time.Now()
	for deadline := time.Now().Add(20 * time.Second); time.Since(since) < 300*time.Millisecond; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still changing after 20s: %d", last)
		}
		if v := f(); v != last {
			last, since = v, time.Now()
		}
	}
	return last
}

// awaitState polls cond until it holds, failing after 10 seconds.
func awaitState(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func classifyConfig(c *pb.ClassifyStreamConfig) *pb.ClassifyStreamRequest {
	return &pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Config{Config: c}}
}

// classifyFrame wraps f (nil: a frame of its own), giving it an image if it has none.
func classifyFrame(f *pb.StreamFrame) *pb.ClassifyStreamRequest {
	if f == nil {
		f = &pb.StreamFrame{}
	}
	if f.Image == nil {
		f.Image = &pb.Image{Data: &pb.Image_Encoded{Encoded: []byte("x")}}
	}
	return &pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Frame{Frame: f}}
}

// classifyAll sends the config and frames from a goroutine, closes, and collects
// everything until the end status (nil for OK).
func classifyAll(ctx context.Context, conn *grpc.ClientConn, cfg *pb.ClassifyStreamConfig, frames []*pb.StreamFrame) ([]*pb.ClassifyStreamResponse, error) {
	s, err := pb.NewClassifyServiceClient(conn).ClassifyStream(ctx)
	if err != nil {
		return nil, err
	}
	go func() {
		if s.Send(classifyConfig(cfg)) != nil {
			return
		}
		for _, f := range frames {
			if s.Send(classifyFrame(f)) != nil {
				return
			}
		}
		s.CloseSend()
	}()
	var out []*pb.ClassifyStreamResponse
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

// TestAClientThatNeverReads sends big frames as fast as it can on a stream whose
// results are big, and never reads one. The server stops reading the stream's frames
// once its bounds are full (the client's Send blocks for good), keeps a bounded heap
// and a few goroutines for it, and serves a second stream and a unary call on the same
// connection meanwhile; when the client cancels, everything is released. The stream
// is never ended by the server: nothing bounds how long a client may hold it (see
// --max-streams-per-caller, --max-connection-age).
func TestAClientThatNeverReads(t *testing.T) {
	core := &edgeClassifier{pad: 200}
	conn, _ := serve(t, Cores{Classifier: core})
	client := pb.NewClassifyServiceClient(conn)
	// Warm the connection up, so only the stream's goroutines are new.
	if _, err := classifyAll(context.Background(), conn, &pb.ClassifyStreamConfig{}, []*pb.StreamFrame{{}}); err != nil {
		t.Fatal(err)
	}
	const width = 64 << 10 // raw frames of 64Ki x 1 pixels, 192 KiB each
	img := &pb.Image{Data: &pb.Image_Raw{Raw: &pb.RawImage{Rgb: make([]byte, width*3), Width: width, Height: 1}}}
	for _, policy := range []pb.FramePolicy{pb.FramePolicy_FRAME_POLICY_BLOCK, pb.FramePolicy_FRAME_POLICY_LATEST} {
		t.Run(policy.String(), func(t *testing.T) {
			goroutines, heap := runtime.NumGoroutine(), heapInUseAfterGC()
			core.images.Store(0)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, err := client.ClassifyStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var sent atomic.Int64
			sending := make(chan struct{})
			go func() {
				defer close(sending)
				cfg := &pb.ClassifyStreamConfig{TopK: proto.Int32(1000), Options: &pb.StreamOptions{Policy: policy, SummaryInterval: durationpb.New(10 * time.Millisecond)}}
				if s.Send(classifyConfig(cfg)) != nil {
					return
				}
				for i := uint64(0); ; i++ {
					if s.Send(classifyFrame(&pb.StreamFrame{FrameId: i, Image: img})) != nil {
						return
					}
					sent.Add(1)
				}
			}()
			frames := settledValue(t, sent.Load)
			classified := settledValue(t, core.images.Load)
			stuckGoroutines, stuckHeap := runtime.NumGoroutine(), heapInUseAfterGC()
			t.Logf("%v: the client's Send blocked after %d frames of 192 KiB; %d classified; goroutines %d -> %d; heap in use %.1f -> %.1f MiB",
				policy, frames, classified, goroutines, stuckGoroutines, float64(heap)/(1<<20), float64(stuckHeap)/(1<<20))
			// Both sides of the connection are in this process, so the numbers include the
			// client's buffers; without a bound they would grow with every frame.
			if classified > 64 || stuckGoroutines-goroutines > 16 || stuckHeap > heap+64<<20 {
				t.Errorf("a stream whose client never reads holds %d classified frames, %d goroutines, %d MiB more heap: want a few frames, a few goroutines, bounded memory",
					classified, stuckGoroutines-goroutines, (stuckHeap-heap)>>20)
			}
			// Other clients are served meanwhile, on the same connection.
			got, err := classifyAll(ctx, conn, &pb.ClassifyStreamConfig{}, make([]*pb.StreamFrame, 50))
			if err != nil || len(got) != 50 {
				t.Fatalf("a second stream: got %d messages and %v, want 50 results and OK", len(got), err)
			}
			if _, err := client.Classify(ctx, &pb.ClassifyRequest{Images: []*pb.Image{img}}); err != nil {
				t.Fatalf("a unary call: %v", err)
			}
			// Minutes later the stream would be the same; its summaries wait too.
			if again := settledValue(t, sent.Load); again != frames {
				t.Fatalf("the client sent %d frames more meanwhile", again-frames)
			}
			cancel()
			<-sending
			awaitState(t, "the stream's goroutines to end", func() bool { return runtime.NumGoroutine() <= goroutines })
		})
	}
}

// TestHalfCloseAnswersEveryFrame: a client that closes its side right after a burst of
// frames, while they are still queued and in the model (which takes a random time per
// frame), gets a result for every frame, in order, then a last summary, then OK.
func TestHalfCloseAnswersEveryFrame(t *testing.T) {
	conn, _ := serve(t, Cores{Classifier: &edgeClassifier{jitter: 2 * time.Millisecond}})
	const n = 300
	for _, policy := range []pb.FramePolicy{pb.FramePolicy_FRAME_POLICY_BLOCK, pb.FramePolicy_FRAME_POLICY_LATEST} {
		t.Run(policy.String(), func(t *testing.T) {
			frames := make([]*pb.StreamFrame, n)
			for i := range frames {
				frames[i] = &pb.StreamFrame{FrameId: uint64(i)}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got, err := classifyAll(ctx, conn, &pb.ClassifyStreamConfig{Options: &pb.StreamOptions{
				Policy: policy, QueueSize: 1, SummaryInterval: durationpb.New(time.Hour)}}, frames)
			if err != nil {
				t.Fatalf("got %v, want OK", err)
			}
			if len(got) != n+1 || got[n].GetSummary() == nil {
				t.Fatalf("got %d messages, want %d results and the last summary", len(got), n)
			}
			classified := uint64(0)
			for i, m := range got[:n] {
				r := m.GetResult()
				if r.GetFrameId() != uint64(i) || r.GetError() != nil || (r.GetSkipped() == (r.GetClassification() != nil)) {
					t.Fatalf("message %d: got %v, want frame %d classified or skipped", i, m, i)
				}
				if policy == pb.FramePolicy_FRAME_POLICY_BLOCK && r.GetSkipped() {
					t.Fatalf("frame %d skipped under block", i)
				}
				if !r.GetSkipped() {
					classified++
				}
			}
			if s := got[n].GetSummary(); s.Frames != classified {
				t.Fatalf("the last summary counts %d frames, want the %d classified", s.Frames, classified)
			}
			t.Logf("%v: %d of %d frames classified, the rest skipped", policy, classified, n)
		})
	}
}

// TestCancelWhileFramesAreInTheModel: a client that cancels while its frames wait in
// the model leaves nothing behind: each frame's call sees the cancellation, and the
// stream's goroutines end.
func TestCancelWhileFramesAreInTheModel(t *testing.T) {
	core := &edgeClassifier{}
	conn, _ := serve(t, Cores{Classifier: core})
	// Warm the connection up, so only the streams' goroutines are new.
	if _, err := classifyAll(context.Background(), conn, &pb.ClassifyStreamConfig{}, []*pb.StreamFrame{{}}); err != nil {
		t.Fatal(err)
	}
	core.hold.Store(true)
	goroutines := runtime.NumGoroutine()
	for round := range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		s, err := pb.NewClassifyServiceClient(conn).ClassifyStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s.Send(classifyConfig(&pb.ClassifyStreamConfig{}))
		for i := range 20 {
			s.Send(classifyFrame(&pb.StreamFrame{FrameId: uint64(i)}))
		}
		if round == 2 {
			s.CloseSend() // half-closed, and then cancelled
		}
		awaitState(t, "Depth frames in the model", func() bool { return core.inModel.Load() == stream.Depth })
		cancel()
		if _, err := s.Recv(); status.Code(err) != codes.Canceled {
			t.Fatalf("got %v, want Canceled", err)
		}
		awaitState(t, "the frames in the model to see the cancellation", func() bool { return core.inModel.Load() == 0 })
	}
	if got := core.cancelled.Load(); got != 3*stream.Depth {
		t.Fatalf("%d frames saw the cancellation, want %d", got, 3*stream.Depth)
	}
	awaitState(t, "the streams' goroutines to end", func() bool { return runtime.NumGoroutine() <= goroutines })
}

// TestOddFramesKeepTheStream sends what broken cameras send: capture times at and
// past every limit (the epoch, 1990, before 1970, out of the Timestamp range,
// malformed nanos, far ahead), frame ids repeated, decreasing, 0 and the largest, and
// no image. Each frame is answered in order under the id it was sent with, the bad
// ones with INVALID_ARGUMENT naming the problem; only the frames in the tally window
// are counted.
func TestOddFramesKeepTheStream(t *testing.T) {
	conn, _ := serve(t, Cores{Classifier: &edgeClassifier{}})
	now := time.Now()
	ts := func(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }
	cases := []struct {
		id   uint64
		at   *timestamppb.Timestamp
		bad  string // in the frame's error; "" for a classified frame
		none bool   // no image
	}{
		{math.MaxUint64, nil, "", false},
		{0, &timestamppb.Timestamp{}, "", false}, // the epoch: taken, but far outside the window
		{7, ts(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)), "", false},
		{7, ts(now.Add(-30 * time.Minute)), "", false},
		{3, &timestamppb.Timestamp{Seconds: -1}, "before 1970", false},
		{2, &timestamppb.Timestamp{Seconds: math.MinInt64}, "capture_time", false},
		{1, &timestamppb.Timestamp{Seconds: math.MaxInt64}, "capture_time", false},
		{1, &timestamppb.Timestamp{Nanos: 1e9}, "capture_time", false},
		{1, &timestamppb.Timestamp{Nanos: -1}, "capture_time", false},
		{1, ts(now.Add(365 * 24 * time.Hour)), "ahead of the server's clock", false},
		{math.MaxUint64, nil, "has no image", true},
		{math.MaxUint64, ts(now.Add(-time.Second)), "", false},
	}
	frames := make([]*pb.StreamFrame, len(cases))
	for i, tc := range cases {
		frames[i] = &pb.StreamFrame{FrameId: tc.id, CaptureTime: tc.at}
		if !tc.none {
			frames[i].Image = &pb.Image{Data: &pb.Image_Encoded{Encoded: []byte("x")}}
		}
	}
	// classifyAll would give a frame without an image one.
	s, err := pb.NewClassifyServiceClient(conn).ClassifyStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.Send(classifyConfig(&pb.ClassifyStreamConfig{Options: &pb.StreamOptions{SummaryInterval: durationpb.New(time.Hour)}}))
	for _, f := range frames {
		s.Send(&pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Frame{Frame: f}})
	}
	s.CloseSend()
	var results []*pb.ClassifyFrameResult
	var summary *pb.TallySummary
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("got %v, want the stream to go on", err)
		}
		if r := m.GetResult(); r != nil {
			results = append(results, r)
		}
		if sm := m.GetSummary(); sm != nil {
			summary = sm
		}
	}
	if len(results) != len(cases) {
		t.Fatalf("got %d results, want %d", len(results), len(cases))
	}
	for i, tc := range cases {
		r := results[i]
		switch {
		case r.FrameId != tc.id:
			t.Errorf("result %d: frame id %d, want %d", i, r.FrameId, tc.id)
		case tc.bad == "" && (r.Error != nil || r.Classification == nil):
			t.Errorf("result %d (frame %d): got %v, want a classification", i, tc.id, r)
		case tc.bad != "" && (codes.Code(r.Error.GetCode()) != codes.InvalidArgument || !strings.Contains(r.Error.GetMessage(), tc.bad)):
			t.Errorf("result %d (frame %d): got %v, want INVALID_ARGUMENT saying %q", i, tc.id, r.Error, tc.bad)
		}
	}
	// Counted: the unstamped frame, the one from 30 minutes ago and the last one.
	if summary.GetFrames() != 3 {
		t.Errorf("the last summary counts %d frames, want 3", summary.GetFrames())
	}
}

// TestStreamOptionsAtTheirLimits: every limit itself is accepted and one past it
// refused, with the Durations a client can spell (nanoseconds, huge seconds).
func TestStreamOptionsAtTheirLimits(t *testing.T) {
	conn, _ := serve(t, Cores{Classifier: &edgeClassifier{}})
	rules := func(n, cats int, name func(int) string) []*pb.AlertRule {
		out := make([]*pb.AlertRule, n)
		for i := range out {
			out[i] = &pb.AlertRule{Name: name(i), Categories: append(make([]string, 0, cats), strings.Split(strings.Repeat("Dress,", cats-1)+"Coat", ",")...)}
		}
		return out
	}
	named := func(i int) string { return fmt.Sprintf("r%d", i) }
	for _, tc := range []struct {
		name string
		opts *pb.StreamOptions
		bad  string // in the status; "" for accepted
	}{
		{"1 ns window", &pb.StreamOptions{TallyWindow: &durationpb.Duration{Nanos: 1}}, ""},
		{"24 h window", &pb.StreamOptions{TallyWindow: durationpb.New(stream.MaxTallyWindow)}, ""},
		{"24 h and 1 ns", &pb.StreamOptions{TallyWindow: durationpb.New(stream.MaxTallyWindow + 1)}, "tally_window"},
		{"window of the largest seconds", &pb.StreamOptions{TallyWindow: &durationpb.Duration{Seconds: math.MaxInt64}}, "tally_window"},
		{"window of the smallest seconds", &pb.StreamOptions{TallyWindow: &durationpb.Duration{Seconds: math.MinInt64}}, "tally_window"},
		{"summaries every 10 ms", &pb.StreamOptions{SummaryInterval: &durationpb.Duration{Nanos: 1e7}}, ""},
		{"summaries every 10 ms less 1 ns", &pb.StreamOptions{SummaryInterval: &durationpb.Duration{Nanos: 1e7 - 1}}, "summary_interval"},
		{"summaries every largest seconds", &pb.StreamOptions{SummaryInterval: &durationpb.Duration{Seconds: math.MaxInt64}}, ""},
		{"queue of 64", &pb.StreamOptions{QueueSize: stream.MaxQueueSize}, ""},
		{"queue of 65", &pb.StreamOptions{QueueSize: stream.MaxQueueSize + 1}, "queue_size 65"},
		{"16 rules of 64 categories", &pb.StreamOptions{AlertRules: rules(16, 64, named)}, ""},
		{"17 rules", &pb.StreamOptions{AlertRules: rules(17, 1, named)}, "17 alert rules"},
		{"65 categories", &pb.StreamOptions{AlertRules: rules(1, 65, named)}, "1 to 64 categories, has 65"},
		{"a name twice", &pb.StreamOptions{AlertRules: rules(2, 1, func(int) string { return "same" })}, `"same" is used twice`},
		{"names with NUL and non-ASCII", &pb.StreamOptions{CameraId: "door\x00ünï🎥", AlertRules: rules(2, 1, func(i int) string { return fmt.Sprintf("r\x00%d🎥", i) })}, ""},
		{"a category with odd bytes", &pb.StreamOptions{AlertRules: []*pb.AlertRule{{Categories: []string{"Dre\x00ss\u202e"}}}}, `category "Dre\x00ss\u202e"`},
		{"the largest cooldown", &pb.StreamOptions{AlertRules: []*pb.AlertRule{{Categories: []string{"Dress"}, Cooldown: &durationpb.Duration{Seconds: math.MaxInt64}}}}, ""},
		{"a negative cooldown", &pb.StreamOptions{AlertRules: []*pb.AlertRule{{Categories: []string{"Dress"}, Cooldown: &durationpb.Duration{Nanos: -1}}}}, "cooldown -1ns is negative"},
		{"the most consecutive frames", &pb.StreamOptions{AlertRules: []*pb.AlertRule{{Categories: []string{"Dress"}, MinConsecutiveFrames: math.MaxUint32}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := classifyAll(ctx, conn, &pb.ClassifyStreamConfig{Options: tc.opts}, make([]*pb.StreamFrame, 3))
			st := status.Convert(err)
			if tc.bad == "" && (err != nil || len(got) < 3) {
				t.Fatalf("got %d messages and %v, want the stream served", len(got), err)
			}
			if tc.bad != "" && (st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tc.bad)) {
				t.Fatalf("got %v, want INVALID_ARGUMENT saying %q", err, tc.bad)
			}
		})
	}
}

// watchAlerts starts a WatchAlerts and waits for its headers (the subscription is in place).
func watchAlerts(t *testing.T, ctx context.Context, conn *grpc.ClientConn, req *pb.WatchAlertsRequest) pb.AlertService_WatchAlertsClient {
	t.Helper()
	w, err := pb.NewAlertServiceClient(conn).WatchAlerts(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Header(); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestWatchFiltersWithOddNames: names are matched byte for byte (NUL, non-ASCII, the
// empty camera id of a stream without one), and a name no alert can carry, over
// stream.MaxNameBytes, is refused rather than kept for as long as the watch lasts
// (before the fix a watch held a 3 MiB camera id).
func TestWatchFiltersWithOddNames(t *testing.T) {
	hub := stream.NewHub(0)
	conn := dialDetect(t, hub)
	for _, req := range []*pb.WatchAlertsRequest{
		{CameraIds: []string{"door", strings.Repeat("c", stream.MaxNameBytes+1)}},
		{Rules: []string{strings.Repeat("r", 3<<20)}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		w, err := pb.NewAlertServiceClient(conn).WatchAlerts(ctx, req)
		if err == nil {
			_, err = w.Recv()
		}
		cancel()
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "over the limit of 256") {
			t.Fatalf("got %v, want INVALID_ARGUMENT naming the limit", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Each watcher also watches "end", whose alert, published last, ends its reading.
	odd := "door\x00ünï🎥"
	watchers := map[string]pb.AlertService_WatchAlertsClient{
		"odd":     watchAlerts(t, ctx, conn, &pb.WatchAlertsRequest{CameraIds: []string{odd, "end"}}),
		"prefix":  watchAlerts(t, ctx, conn, &pb.WatchAlertsRequest{CameraIds: []string{"door", "end"}}),
		"unnamed": watchAlerts(t, ctx, conn, &pb.WatchAlertsRequest{CameraIds: []string{"", "end"}}),
		"longest": watchAlerts(t, ctx, conn, &pb.WatchAlertsRequest{CameraIds: []string{strings.Repeat("c", stream.MaxNameBytes), odd, "end"}}),
	}
	for _, camera := range []string{odd, ""} {
		cfg := &pb.DetectStreamRequest{Message: &pb.DetectStreamRequest_Config{Config: &pb.DetectStreamConfig{Options: &pb.StreamOptions{
			CameraId: camera, AlertRules: []*pb.AlertRule{{Name: "bags", Categories: []string{"bag"}}}}}}}
		if _, err := detectStream(t, conn, cfg, frameOfWidth(1, 2)); err != nil {
			t.Fatal(err)
		}
	}
	hub.Publish(stream.Alert{CameraID: "end"})
	for name, want := range map[string][]string{"odd": {odd}, "unnamed": {""}, "longest": {odd}, "prefix": {}} {
		got := []string{}
		for {
			m, err := watchers[name].Recv()
			if err != nil {
				t.Fatalf("watcher %s: %v", name, err)
			}
			if m.Alert.CameraId == "end" {
				break
			}
			got = append(got, m.Alert.CameraId)
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Errorf("watcher %s got cameras %q, want %q", name, got, want)
		}
	}
}

// TestAFloodOfAlertsCutsOffOnlyTheWatcherThatDoesNotRead streams frames that raise an
// alert each other frame (no cooldown, names of 256 bytes) while three watchers listen:
// one reads everything, one never reads, one watches another camera. The stream never
// waits for the watchers; the one that never reads is cut off at the hub (the others
// are not), and when it reads at last it gets the alerts it was sent, in order and
// without a gap, then RESOURCE_EXHAUSTED, as the docs promise.
func TestAFloodOfAlertsCutsOffOnlyTheWatcherThatDoesNotRead(t *testing.T) {
	hub := stream.NewHub(0)
	conn := dialDetect(t, hub)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	camera, rule := strings.Repeat("c", stream.MaxNameBytes), strings.Repeat("r", stream.MaxNameBytes)
	reader := watchAlerts(t, ctx, conn, &pb.WatchAlertsRequest{})
	stalled := watchAlerts(t, ctx, conn, &pb.WatchAlertsRequest{CameraIds: []string{camera}})
	watchAlerts(t, ctx, conn, &pb.WatchAlertsRequest{CameraIds: []string{"elsewhere"}}) // gets nothing, so keeps up
	var read atomic.Int64
	readerDone := make(chan error, 1)
	go func() {
		for i := uint64(0); ; i++ {
			m, err := reader.Recv()
			if err != nil {
				readerDone <- err
				return
			}
			if m.Alert.FrameId != 2*i {
				readerDone <- fmt.Errorf("alert %d is for frame %d, want %d", i, m.Alert.FrameId, 2*i)
				return
			}
			read.Add(1)
		}
	}()
	s, err := pb.NewDetectServiceClient(conn).DetectStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Send(&pb.DetectStreamRequest{Message: &pb.DetectStreamRequest_Config{Config: &pb.DetectStreamConfig{Options: &pb.StreamOptions{
		CameraId: camera, AlertRules: []*pb.AlertRule{{Name: rule, Categories: []string{"Dress"}}}}}}})
	var results atomic.Int64
	streamDone := make(chan error, 1)
	go func() {
		for {
			m, err := s.Recv()
			if err != nil {
				streamDone <- err
				return
			}
			if m.GetResult() != nil {
				results.Add(1)
			}
		}
	}()
	// Rounds of 100 frames, 50 alerts (within any watcher's buffer), until the hub cuts
	// the stalled watcher off; the reader keeps up with each round.
	const round = 100
	frames := 0
	for ; frames < 400*round; frames += round {
		if _, lost := hub.Stats(); lost > 0 {
			break
		}
		for i := range round {
			id := uint64(frames + i)
			if s.Send(frameOfWidth(id, 2+int(id%2))) != nil { // a Dress on even frames
				t.Fatal("the stream ended")
			}
		}
		awaitState(t, "the reader to keep up", func() bool { return read.Load() == int64(frames+round)/2 })
	}
	s.CloseSend()
	if err := <-streamDone; !errors.Is(err, io.EOF) || results.Load() != int64(frames) {
		t.Fatalf("the stream got %d results and %v, want %d and OK", results.Load(), err, frames)
	}
	if watchers, lost := hub.Stats(); watchers != 2 || lost != 1 {
		t.Fatalf("got %d watchers and %d cut off, want 2 (the reader and the other camera's) and 1", watchers, lost)
	}
	var got uint64
	for {
		m, err := stalled.Recv()
		if err != nil {
			if st := status.Convert(err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "fell more than 256 alerts behind") {
				t.Fatalf("the stalled watcher ended with %v, want RESOURCE_EXHAUSTED", err)
			}
			break
		}
		if m.Alert.FrameId != 2*got {
			t.Fatalf("the stalled watcher's alert %d is for frame %d, want %d", got, m.Alert.FrameId, 2*got)
		}
		got++
	}
	t.Logf("%d alerts raised; the watcher that never read got the first %d of them once it read", frames/2, got)
	if got < stream.DefaultWatchBuffer || got >= uint64(frames/2) {
		t.Fatalf("the stalled watcher got %d alerts, want its buffer and what gRPC held, not all %d", got, frames/2)
	}
	cancel()
	<-readerDone
}

// TestManyWatchers: 300 watchers each get every alert; when they leave, the hub
// forgets them all.
func TestManyWatchers(t *testing.T) {
	hub := stream.NewHub(0)
	conn := dialDetect(t, hub)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	watchers := make([]pb.AlertService_WatchAlertsClient, 300)
	for i := range watchers {
		watchers[i] = watchAlerts(t, ctx, conn, &pb.WatchAlertsRequest{})
	}
	cfg := &pb.DetectStreamRequest{Message: &pb.DetectStreamRequest_Config{Config: &pb.DetectStreamConfig{Options: &pb.StreamOptions{
		AlertRules: []*pb.AlertRule{{Name: "bags", Categories: []string{"bag"}}, {Name: "dresses", Categories: []string{"Dress"}}}}}}}
	if _, err := detectStream(t, conn, cfg, frameOfWidth(1, 2), frameOfWidth(2, 3), frameOfWidth(3, 2)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, w := range watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got []string
			for range 4 {
				m, err := w.Recv()
				if err != nil {
					t.Errorf("watcher %d: %v", i, err)
					return
				}
				got = append(got, fmt.Sprintf("%s@%d", m.Alert.Rule, m.Alert.FrameId))
			}
			if want := "[bags@1 dresses@1 bags@3 dresses@3]"; fmt.Sprint(got) != want {
				t.Errorf("watcher %d got %v, want %s", i, got, want)
			}
		}()
	}
	wg.Wait()
	cancel()
	awaitState(t, "the hub to forget the watchers", func() bool { n, _ := hub.Stats(); return n == 0 })
}
