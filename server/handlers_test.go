package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/atelier-vision/atelier/internal/batching"
	"github.com/atelier-vision/atelier/internal/classify"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/models"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
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

// dial serves a ClassifyServer with the fake core over an in-memory connection.
func dial(t *testing.T, core Classifier) pb.ClassifyServiceClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	s := grpc.NewServer()
	pb.RegisterClassifyServiceServer(s, &ClassifyServer{Core: core, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	go s.Serve(lis)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); s.Stop() })
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
	if fake.got.Model != (models.Spec{Name: "m", Version: 2}) || fake.got.TopK != 0 || len(fake.got.Images) != 2 {
		t.Fatalf("core got %+v, want model m:2, top_k 0 (default) and 2 images", fake.got)
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
		{"invalid request", fmt.Errorf("%w: top_k", classify.ErrInvalidRequest), codes.InvalidArgument, "top_k"},
		{"not found", fmt.Errorf("%w: no model named x", models.ErrNotFound), codes.NotFound, "no model named x"},
		{"wrong role", fmt.Errorf("%w: detector", models.ErrWrongRole), codes.FailedPrecondition, "detector"},
		{"queue full", fmt.Errorf("%w: retry", batching.ErrQueueFull), codes.ResourceExhausted, "retry"},
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

func TestClassifyRefusesBadTopKBeforeTheCore(t *testing.T) {
	fake := &fakeClassifier{}
	client := dial(t, fake)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := client.Classify(ctx, &pb.ClassifyRequest{TopK: proto.Int32(0), Images: []*pb.Image{{}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v, want InvalidArgument", err)
	}
	if fake.got.Images != nil {
		t.Fatal("the core was called for a request the handler should refuse")
	}
}
