package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/atelier-vision/atelier/internal/batching"
	"github.com/atelier-vision/atelier/internal/classify"
	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/stream"
	"github.com/atelier-vision/atelier/internal/tensor"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

// fakeClassifier records the request it got and answers with err or a fixed result.
type fakeClassifier struct {
	got classify.Request
	err error
}

func (f *fakeClassifier) Classify(_ context.Context, req classify.Request) (classify.Result, error) {
	f.got = req
	if f.err != nil {
		return classify.Result{}, f.err
	}
	res := classify.Result{Model: models.Spec{Name: "fake", Version: 3}}
	for range req.Images {
		res.Predictions = append(res.Predictions, []classify.Prediction{{Label: "Dress", Index: 3, Score: 0.75}})
	}
	return res, nil
}

// Labels answers as a classifier of the Fashion-MNIST labels would; the model
// "unlabelled" has none.
func (f *fakeClassifier) Labels(spec models.Spec) (map[string][]string, error) {
	if spec.Name == "unlabelled" {
		return map[string][]string{"unlabelled:1": nil}, nil
	}
	return map[string][]string{"fake:3": {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}}, nil
}

// dial serves the fake classify core and returns a client of it.
func dial(t *testing.T, core Classifier) pb.ClassifyServiceClient {
	conn, _ := serve(t, Cores{Classifier: core})
	return pb.NewClassifyServiceClient(conn)
}

func TestClassifyConvertsRequestAndResponse(t *testing.T) {
	fake := &fakeClassifier{}
	client := dial(t, fake)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := client.Classify(ctx, &pb.ClassifyRequest{
		Model: &pb.ModelSpec{Name: "m", Version: 2},
		Images: []*pb.Image{
			{Data: &pb.Image_Encoded{Encoded: []byte("png")}},
			{Data: &pb.Image_Raw{Raw: &pb.RawImage{Rgb: []byte{1, 2, 3}, Width: 1, Height: 1}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if fake.got.Model != (models.Spec{Name: "m", Version: 2}) || fake.got.TopK != classify.DefaultTopK || len(fake.got.Images) != 2 {
		t.Fatalf("core got %+v, want model m:2, the default top_k and 2 images", fake.got)
	}
	if string(fake.got.Images[0].Encoded) != "png" || fake.got.Images[1].Frame == nil || fake.got.Images[1].Frame.Width != 1 {
		t.Fatalf("core got images %+v, want one encoded and one raw frame", fake.got.Images)
	}
	if resp.Model.GetName() != "fake" || resp.Model.GetVersion() != 3 || len(resp.Classifications) != 2 ||
		resp.Classifications[1].Predictions[0].Label != "Dress" || resp.Classifications[1].Predictions[0].ClassIndex != 3 {
		t.Fatalf("got response %v, want the fake's answer for both images", resp)
	}
}

func TestClassifyErrorTable(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		code    codes.Code
		message string
	}{
		{"invalid image", fmt.Errorf("image 0: %w: corrupt", imageio.ErrInvalidImage), codes.InvalidArgument, "image 0"},
		{"too large", fmt.Errorf("%w: 9000x9000", imageio.ErrTooLarge), codes.InvalidArgument, "9000x9000"},
		{"invalid request", fmt.Errorf("%w: top_k", errkind.Invalid), codes.InvalidArgument, "top_k"},
		{"not found", fmt.Errorf("%w: no model named x", models.ErrNotFound), codes.NotFound, "no model named x"},
		{"wrong role", fmt.Errorf("%w: detector", models.ErrWrongRole), codes.FailedPrecondition, "detector"},
		{"queue full", fmt.Errorf("%w: retry", batching.ErrQueueFull), codes.ResourceExhausted, "retry"},
		{"bad tensor", fmt.Errorf("run: %w: input \"images\"", tensor.ErrBadInput), codes.InvalidArgument, "images"},
		{"model closed", fmt.Errorf("run: model %w", tensor.ErrClosed), codes.Unavailable, "closed"},
		{"deadline", fmt.Errorf("run: %w", context.DeadlineExceeded), codes.DeadlineExceeded, ""},
		{"unknown error hides details", errors.New("tf: /secret/path exploded"), codes.Internal, "internal error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := dial(t, &fakeClassifier{err: tc.err})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := client.Classify(ctx, &pb.ClassifyRequest{Images: []*pb.Image{{Data: &pb.Image_Encoded{Encoded: []byte("x")}}}})
			st := status.Convert(err)
			if st.Code() != tc.code || !strings.Contains(st.Message(), tc.message) {
				t.Fatalf("got %v %q, want %v containing %q", st.Code(), st.Message(), tc.code, tc.message)
			}
			if strings.Contains(st.Message(), "/secret/path") {
				t.Fatalf("message %q leaks internals", st.Message())
			}
		})
	}
}

func TestClassifyPassesAnExplicitTopKToTheCore(t *testing.T) {
	// The handler fills in only what the client left unset; the core validates every
	// value, an explicit 0 included.
	fake := &fakeClassifier{}
	client := dial(t, fake)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := client.Classify(ctx, &pb.ClassifyRequest{TopK: proto.Int32(0), Images: []*pb.Image{{Data: &pb.Image_Encoded{Encoded: []byte("x")}}}}); err != nil {
		t.Fatal(err)
	}
	if fake.got.TopK != 0 {
		t.Fatalf("core got top_k %d, want the client's 0", fake.got.TopK)
	}
}

// TestStreamOptionsFillOnlyUnsetFields: the handler fills the defaults of the fields
// the client left unset and passes explicit values through for the core to validate.
func TestStreamOptionsFillOnlyUnsetFields(t *testing.T) {
	unset, err := streamOptions(&pb.StreamOptions{})
	if err != nil || unset.TallyWindow != stream.DefaultTallyWindow || unset.Summaries || unset.SummaryInterval != 0 {
		t.Fatalf("unset: got %+v, %v; want the default window and no summaries", unset, err)
	}
	set, err := streamOptions(&pb.StreamOptions{TallyWindow: durationpb.New(time.Minute), SummaryInterval: durationpb.New(time.Second)})
	if err != nil || set.TallyWindow != time.Minute || !set.Summaries || set.SummaryInterval != time.Second {
		t.Fatalf("set: got %+v, %v; want the client's window and interval", set, err)
	}
}

// TestClassifyStreamRefusesBadConfigs: a config out of range ends the stream with
// InvalidArgument naming the field, before any frame reaches the core, even when
// frames follow (the fake core would answer them all).
func TestClassifyStreamRefusesBadConfigs(t *testing.T) {
	fake := &fakeClassifier{}
	conn, _ := serve(t, Cores{Classifier: fake})
	client := pb.NewClassifyServiceClient(conn)
	dress := []string{"Dress"}
	tests := []struct {
		name    string
		config  *pb.ClassifyStreamConfig
		message string
	}{
		{"version and label", &pb.ClassifyStreamConfig{Model: &pb.ModelSpec{Name: "m", Version: 2, VersionLabel: "stable"}},
			"set model.version or model.version_label, not both"},
		{"negative version", &pb.ClassifyStreamConfig{Model: &pb.ModelSpec{Version: -1}}, "model.version -1 is negative"},
		{"top_k over the limit", &pb.ClassifyStreamConfig{TopK: proto.Int32(1001)}, "top_k 1001 is out of range 1..1000"},
		// An explicit 0 is not taken for the default: the handler fills only unset
		// fields, and the core refuses the 0, naming the field and its limit.
		{"tally_window of 0", &pb.ClassifyStreamConfig{Options: &pb.StreamOptions{TallyWindow: durationpb.New(0)}},
			"tally_window 0s is out of range (0, 24h0m0s] (leave it unset for 1h0m0s)"},
		{"summary_interval of 0", &pb.ClassifyStreamConfig{Options: &pb.StreamOptions{SummaryInterval: durationpb.New(0)}},
			"summary_interval 0s is below 10ms (leave it unset for no summaries)"},
		{"negative summary_interval", &pb.ClassifyStreamConfig{Options: &pb.StreamOptions{SummaryInterval: durationpb.New(-time.Second)}},
			"summary_interval -1s is below 10ms"},
		{"rule name too long", &pb.ClassifyStreamConfig{Options: &pb.StreamOptions{AlertRules: []*pb.AlertRule{
			{Name: strings.Repeat("n", 1000), Categories: dress}}}}, "name of 1000 bytes is over the limit of 256"},
		{"category too long", &pb.ClassifyStreamConfig{Options: &pb.StreamOptions{AlertRules: []*pb.AlertRule{
			{Categories: []string{strings.Repeat("d", 257)}}}}}, "category 0 of 257 bytes is over the limit of 256"},
		{"a default rule name taken", &pb.ClassifyStreamConfig{Options: &pb.StreamOptions{AlertRules: []*pb.AlertRule{
			{Name: "rule-2", Categories: dress}, {Categories: dress}}}}, `alert rule name "rule-2" is used twice`},
		{"a category the model does not name", &pb.ClassifyStreamConfig{Options: &pb.StreamOptions{AlertRules: []*pb.AlertRule{
			{Name: "dresses", Categories: []string{"Dress", "Dres"}}}}},
			`alert rule 0 ("dresses"): no model of this stream names the category "Dres" (fake:3: T-shirt/top, Trouser,`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := client.ClassifyStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			s.Send(&pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Config{Config: tc.config}})
			for i := range 3 {
				s.Send(&pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Frame{Frame: &pb.StreamFrame{
					FrameId: uint64(i), Image: &pb.Image{Data: &pb.Image_Encoded{Encoded: []byte("x")}}}}})
			}
			s.CloseSend()
			var results int
			for err == nil {
				var m *pb.ClassifyStreamResponse
				if m, err = s.Recv(); m.GetResult() != nil {
					results++
				}
			}
			if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tc.message) || results != 0 {
				t.Fatalf("got %v after %d frame results, want InvalidArgument saying %q and none", err, results, tc.message)
			}
		})
	}
}

// TestWatchAlertsRefusesAnOversizedFilter: more than 1000 camera ids or rules is
// InvalidArgument naming the limit.
func TestWatchAlertsRefusesAnOversizedFilter(t *testing.T) {
	conn, _ := serve(t, Cores{})
	client := pb.NewAlertServiceClient(conn)
	many := make([]string, stream.MaxFilterNames+1)
	for _, req := range []*pb.WatchAlertsRequest{{CameraIds: many}, {Rules: many}} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := client.WatchAlerts(ctx, req)
		if err == nil {
			_, err = s.Recv()
		}
		cancel()
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "1001 camera ids or rules is over the limit of 1000") {
			t.Fatalf("got %v, want InvalidArgument naming the limit", err)
		}
	}
}

// panicky is a classify core that panics.
type panicky struct{ *fakeClassifier }

func (panicky) Classify(context.Context, classify.Request) (classify.Result, error) {
	panic("core blew up at /secret/path")
}

func TestInternalErrorsAreLoggedOnceAndHidden(t *testing.T) {
	tests := []struct {
		name      string
		core      Classifier
		wantCause string
	}{
		{"error outside the table", &fakeClassifier{err: errors.New("tf: /secret/path exploded")}, "/secret/path exploded"},
		{"panic", panicky{}, "panic: core blew up"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, logs := serve(t, Cores{Classifier: tc.core})
			client := pb.NewClassifyServiceClient(conn)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := client.Classify(ctx, &pb.ClassifyRequest{Images: []*pb.Image{{Data: &pb.Image_Encoded{Encoded: []byte("x")}}}})
			if st := status.Convert(err); st.Code() != codes.Internal || strings.Contains(st.Message(), "secret") {
				t.Fatalf("got %v %q, want Internal without internals", st.Code(), st.Message())
			}
			// The interceptor logs after the status is sent; give it a moment.
			deadline := time.Now().Add(2 * time.Second)
			for !strings.Contains(logs.String(), tc.wantCause) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if n := strings.Count(logs.String(), tc.wantCause); n != 1 {
				t.Fatalf("the cause %q is in the log %d times, want once:\n%s", tc.wantCause, n, logs)
			}
			if got := strings.Count(logs.String(), "level=ERROR"); got != 1 {
				t.Fatalf("got %d error lines, want 1:\n%s", got, logs)
			}
		})
	}
}

// TestStreamRulesWatchWhatTheModelsName starts streams whose rules watch for labels
// the models name, and one on a model without labels (whose classes are class_N),
// and checks each stream answers its frame; the refusals are in the tests above.
func TestStreamRulesWatchWhatTheModelsName(t *testing.T) {
	conn, _ := serve(t, Cores{Classifier: &fakeClassifier{}, Detector: fakeDetector{}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	classifyWith := func(model string, cats ...string) error {
		s, err := pb.NewClassifyServiceClient(conn).ClassifyStream(ctx)
		if err != nil {
			return err
		}
		s.Send(&pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Config{Config: &pb.ClassifyStreamConfig{
			Model: &pb.ModelSpec{Name: model}, Options: &pb.StreamOptions{AlertRules: []*pb.AlertRule{{Categories: cats}}}}}})
		s.Send(&pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Frame{Frame: &pb.StreamFrame{
			Image: &pb.Image{Data: &pb.Image_Encoded{Encoded: []byte("x")}}}}})
		s.CloseSend()
		for {
			if _, err := s.Recv(); err != nil {
				return err
			}
		}
	}
	for _, tc := range []struct {
		model string
		cats  []string
	}{{"", []string{"Dress", "Ankle boot"}}, {"unlabelled", []string{"class_3"}}} {
		if err := classifyWith(tc.model, tc.cats...); err != io.EOF {
			t.Errorf("ClassifyStream on %q watching %q: got %v, want the stream to run", tc.model, tc.cats, err)
		}
	}
	detectWith := func(skip bool, cats ...string) error {
		s, err := pb.NewDetectServiceClient(conn).DetectStream(ctx)
		if err != nil {
			return err
		}
		s.Send(&pb.DetectStreamRequest{Message: &pb.DetectStreamRequest_Config{Config: &pb.DetectStreamConfig{
			SkipClassification: skip, Options: &pb.StreamOptions{AlertRules: []*pb.AlertRule{{Categories: cats}}}}}})
		s.CloseSend()
		for {
			if _, err := s.Recv(); err != nil {
				return err
			}
		}
	}
	if err := detectWith(false, "full-body", "Dress"); err != io.EOF {
		t.Errorf("DetectStream watching a garment type and a category: got %v, want the stream to run", err)
	}
	// Without classification the crops get no fine category: only garment types can fire.
	err := detectWith(true, "Dress")
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), `"Dress" (detector:1: top, bottom, full-body, footwear, bag)`) {
		t.Errorf("DetectStream without classification watching Dress: got %v, want InvalidArgument naming the detector's labels", err)
	}
}

// TestFrameInternalErrorsNameTheCall: a frame's internal error is logged once, under
// the same full method name as the call's access log line, and hidden from the client.
func TestFrameInternalErrorsNameTheCall(t *testing.T) {
	conn, logs := serve(t, Cores{Classifier: &fakeClassifier{err: errors.New("tf: /secret/path exploded")}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := pb.NewClassifyServiceClient(conn).ClassifyStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	frame := &pb.StreamFrame{FrameId: 1, Image: &pb.Image{Data: &pb.Image_Encoded{Encoded: []byte("x")}}}
	for _, m := range []*pb.ClassifyStreamRequest{
		{Message: &pb.ClassifyStreamRequest_Config{Config: &pb.ClassifyStreamConfig{}}},
		{Message: &pb.ClassifyStreamRequest_Frame{Frame: frame}},
	} {
		if err := s.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	s.CloseSend()
	resp, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if fe := resp.GetResult().GetError(); codes.Code(fe.GetCode()) != codes.Internal || strings.Contains(fe.GetMessage(), "secret") {
		t.Fatalf("got frame error %v, want Internal without internals", fe)
	}
	for _, err = s.Recv(); err == nil; _, err = s.Recv() {
	}
	if err != io.EOF {
		t.Fatalf("the stream ended with %v, want OK", err)
	}
	// The access log line is written after the stream ends; give it a moment.
	method := "method=" + pb.ClassifyService_ClassifyStream_FullMethodName
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(logs.String(), method+" code=OK") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), "/secret/path exploded"); n != 1 {
		t.Fatalf("the cause is in the log %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), `msg="internal error" `+method+" ") {
		t.Fatalf("the frame's internal error is not logged under %s:\n%s", method, logs)
	}
}

// panickyRecv is a ModelStreamInfer stream whose Recv panics.
type panickyRecv struct {
	oip.GRPCInferenceService_ModelStreamInferServer
	ctx context.Context
}

func (p panickyRecv) Context() context.Context { return p.ctx }

func (panickyRecv) Recv() (*oip.ModelInferRequest, error) { panic("transport blew up") }

// TestModelStreamInferRecoversAPanicInRecv: a panic in the receive goroutine ends the
// stream with an internal error that carries the panic for the log, and the server
// goes on.
func TestModelStreamInferRecoversAPanicInRecv(t *testing.T) {
	err := (&InferenceServer{}).ModelStreamInfer(panickyRecv{ctx: context.Background()})
	var p *errkind.Panic
	if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != internalMessage || !errors.As(err, &p) || p.Value != "transport blew up" {
		t.Fatalf("got %v, want Internal carrying the recovered panic", err)
	}
}
