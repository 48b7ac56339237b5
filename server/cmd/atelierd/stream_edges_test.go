package main

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// TestStreamMixesFrameKindsAndSizes streams raw and encoded frames of every size in
// one stream, empty ones among them, through the real classify core: each good frame
// is classified like the unary call of the same image, each empty or impossible one
// fails alone with INVALID_ARGUMENT, and the stream goes on.
func TestStreamMixesFrameKindsAndSizes(t *testing.T) {
	_, conn := startApp(t)
	item := testSet(t).Images[0]
	raw := func(w, h int, n int) *pb.Image {
		return &pb.Image{Data: &pb.Image_Raw{Raw: &pb.RawImage{Rgb: make([]byte, n), Width: uint32(w), Height: uint32(h)}}}
	}
	jpg := func(w, h int) *pb.Image {
		m := image.NewRGBA(image.Rect(0, 0, w, h))
		for i := range m.Pix {
			m.Pix[i] = uint8(i)
		}
		m.Set(0, 0, color.White)
		var b bytes.Buffer
		jpeg.Encode(&b, m, nil)
		return encoded(b.Bytes())
	}
	cases := []struct {
		name  string
		image *pb.Image
		bad   string // in the frame's error; "" for a classified frame
	}{
		{"raw 28x28", rawFrame(item), ""},
		{"raw 0x0", raw(0, 0, 0), "size 0x0 must be positive"},
		{"png 28x28", encoded(greyPNG(t, item)), ""},
		{"raw 0x5", raw(0, 5, 0), "size 0x5 must be positive"},
		{"raw 1x1", raw(1, 1, 3), ""},
		{"no bytes", encoded([]byte{}), "no bytes"},
		{"jpeg 640x480", jpg(640, 480), ""},
		{"raw 640x480", raw(640, 480, 640*480*3), ""},
		{"raw of no bytes for 28x28", raw(28, 28, 0), "needs 2352 bytes"},
		{"raw over the size limit", raw(1<<31-1, 1<<31-1, 3), "exceeds the limit"},
		{"jpeg 1x1", jpg(1, 1), ""},
		{"raw 28x28 again", rawFrame(item), ""},
	}
	frames := make([]*pb.StreamFrame, len(cases))
	for i, tc := range cases {
		frames[i] = &pb.StreamFrame{FrameId: uint64(i), Image: tc.image}
	}
	run := classifyStream(ctxFor(t, time.Minute), conn, &pb.ClassifyStreamConfig{}, frames, false)
	if run.err != nil || len(run.results) != len(cases) {
		t.Fatalf("got %d results and %v, want %d and OK", len(run.results), run.err, len(cases))
	}
	client := pb.NewClassifyServiceClient(conn)
	for i, tc := range cases {
		r := run.results[i]
		switch {
		case r.FrameId != uint64(i):
			t.Errorf("%s: result %d has frame id %d", tc.name, i, r.FrameId)
		case tc.bad != "" && (codes.Code(r.Error.GetCode()) != codes.InvalidArgument || !strings.Contains(r.Error.GetMessage(), tc.bad)):
			t.Errorf("%s: got %v, want INVALID_ARGUMENT saying %q", tc.name, r.Error, tc.bad)
		case tc.bad == "":
			unary, err := client.Classify(ctxFor(t, time.Minute), &pb.ClassifyRequest{Images: []*pb.Image{tc.image}})
			if err != nil || r.Error != nil {
				t.Fatalf("%s: stream %v, unary %v", tc.name, r.Error, err)
			}
			if got, want := r.Classification.Predictions[0].Label, unary.Classifications[0].Predictions[0].Label; got != want {
				t.Errorf("%s: the stream says %s, a unary call %s", tc.name, got, want)
			}
		}
	}
}

// TestConnectionAgeEndsStreamsThatNeverRead: nothing in a stream bounds how long a
// client may keep it open without reading its results, or without sending its config;
// --max-connection-age (with its grace) does, for every stream on the connection.
func TestConnectionAgeEndsStreamsThatNeverRead(t *testing.T) {
	const age, grace = 300 * time.Millisecond, 300 * time.Millisecond
	_, conn := startApp(t, func(c *config) {
		c.Security.MaxConnectionAge, c.Security.MaxConnectionGrace = age, grace
	})
	ctx := ctxFor(t, time.Minute)
	client := pb.NewClassifyServiceClient(conn)
	start := time.Now()
	// A stream that never sends its config.
	idle, err := client.ClassifyStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A stream that sends frames as fast as it can and never reads.
	stuck, err := client.ClassifyStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	sendErr := make(chan error, 1)
	go func() {
		err := stuck.Send(&pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Config{Config: &pb.ClassifyStreamConfig{}}})
		frame := &pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Frame{Frame: &pb.StreamFrame{Image: rawFrame(testSet(t).Images[0])}}}
		for err == nil {
			err = stuck.Send(frame)
			sent.Add(1)
		}
		sendErr <- err
	}()
	if _, err := idle.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("the stream without a config ended with %v, want UNAVAILABLE", err)
	}
	select {
	case <-sendErr: // its Send fails once the stream is gone; Recv would say why
	case <-time.After(30 * time.Second):
		t.Fatal("the stream that never reads was not ended")
	}
	if _, err := stuck.Recv(); err == nil {
		for err == nil {
			_, err = stuck.Recv() // the results the client never read, then the end
		}
	}
	t.Logf("both streams ended %v after they started (age %v, grace %v); the one that never read had sent %d frames",
		time.Since(start).Round(time.Millisecond), age, grace, sent.Load())
}
