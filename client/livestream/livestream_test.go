package livestream_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/atelier-vision/atelier/client"
	"github.com/atelier-vision/atelier/client/framesource"
	"github.com/atelier-vision/atelier/client/livestream"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// fakeStreams answers ClassifyStream like the server would: every third frame
// skipped, the fifth one failed, an alert on frame 4, summaries as asked.
type fakeStreams struct {
	pb.UnimplementedClassifyServiceServer
	config *pb.ClassifyStreamConfig
}

func (f *fakeStreams) ClassifyStream(s pb.ClassifyService_ClassifyStreamServer) error {
	first, err := s.Recv()
	if err != nil || first.GetConfig() == nil {
		return status.Error(codes.InvalidArgument, "config first")
	}
	f.config = first.GetConfig()
	send := func(m *pb.ClassifyStreamResponse) error { return s.Send(m) }
	for n := uint64(0); ; {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return send(&pb.ClassifyStreamResponse{Message: &pb.ClassifyStreamResponse_Summary{Summary: &pb.TallySummary{
				Frames: n, Counts: []*pb.CategoryCount{{Label: "Dress", Count: n}}}}})
		}
		if err != nil {
			return err
		}
		n++
		id := m.GetFrame().GetFrameId()
		if id != n || m.GetFrame().GetImage().GetEncoded() == nil {
			return status.Errorf(codes.InvalidArgument, "frame %d: want id %d with an encoded image", id, n)
		}
		res := &pb.ClassifyFrameResult{FrameId: id, Skipped: id%3 == 0}
		switch {
		case id == 5:
			res.Error = &pb.FrameError{Code: int32(codes.InvalidArgument), Message: "corrupt"}
		case !res.Skipped:
			res.Classification = &pb.Classification{Predictions: []*pb.Prediction{{Label: "Dress", Score: 0.9}}}
		}
		if err := send(&pb.ClassifyStreamResponse{Message: &pb.ClassifyStreamResponse_Result{Result: res}}); err != nil {
			return err
		}
		if id == 4 {
			a := &pb.Alert{CameraId: "door", Rule: "dresses", Label: "Dress", Score: 0.9, FrameId: 4, CaptureTime: m.GetFrame().GetCaptureTime()}
			if err := send(&pb.ClassifyStreamResponse{Message: &pb.ClassifyStreamResponse_Alert{Alert: a}}); err != nil {
				return err
			}
		}
	}
}

func dial(t *testing.T, srv pb.ClassifyServiceServer) *client.Client {
	lis := bufconn.Listen(1 << 20)
	s := grpc.NewServer()
	pb.RegisterClassifyServiceServer(s, srv)
	go s.Serve(lis)
	c, err := client.New("127.0.0.1:1", client.WithDialOptions(
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Stop() })
	return c
}

func TestClassifyReportsLive(t *testing.T) {
	fake := &fakeStreams{}
	c := dial(t, fake)
	var jpg bytes.Buffer
	jpeg.Encode(&jpg, image.NewGray(image.Rect(0, 0, 8, 8)), nil)
	src := framesource.MJPEG(bytes.NewReader(bytes.Repeat(jpg.Bytes(), 12)))
	var out bytes.Buffer
	rep, err := livestream.Classify(context.Background(), c, &pb.ClassifyStreamConfig{}, src,
		livestream.Options{FPS: 200, Out: &out, Every: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 12 || rep.Answered != 12 || rep.Skipped != 4 || rep.Failed != 1 || len(rep.Alerts) != 1 {
		t.Fatalf("got %+v, want 12 sent and answered, 4 skipped, 1 failed, 1 alert", rep)
	}
	if rep.P50 <= 0 || rep.P99 < rep.P50 || rep.Summary.GetFrames() != 12 {
		t.Fatalf("got p50 %v p99 %v and summary %v, want latencies and the final summary", rep.P50, rep.P99, rep.Summary)
	}
	if got := fake.config.GetOptions().GetSummaryInterval().AsDuration(); got != 20*time.Millisecond {
		t.Fatalf("asked the server for summaries every %v, want the progress interval 20ms", got)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	for _, want := range []string{"12 sent", "12 answered (4 skipped, 1 failed)", "Dress 12", "1 alerts"} {
		if !strings.Contains(last, want) {
			t.Fatalf("last line %q lacks %q", last, want)
		}
	}
	// At least one progress line while the stream ran (12 frames at 200 fps take 55 ms
	// or more, ticks come every 20 ms), the alert and the final report.
	if !strings.Contains(out.String(), `ALERT camera "door" rule "dresses": Dress (score 0.90) on frame 4`) || len(lines) < 3 {
		t.Fatalf("got output:\n%s\nwant progress lines and the alert", out.String())
	}
	t.Logf("output:\n%s", out.String())
}

func TestClassifyReportsSourceErrors(t *testing.T) {
	c := dial(t, &fakeStreams{})
	var jpg bytes.Buffer
	jpeg.Encode(&jpg, image.NewGray(image.Rect(0, 0, 8, 8)), nil)
	stream := append(bytes.Repeat(jpg.Bytes(), 3), jpg.Bytes()[:20]...) // ends inside an image
	rep, err := livestream.Classify(context.Background(), c, &pb.ClassifyStreamConfig{}, framesource.MJPEG(bytes.NewReader(stream)), livestream.Options{})
	if err == nil || !strings.Contains(err.Error(), "ends inside an image") || rep.Answered != 3 {
		t.Fatalf("got %v after %d answers, want the truncation error after 3", err, rep.Answered)
	}
}
