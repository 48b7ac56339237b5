package main

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/atelier-vision/atelier/internal/fashionmnist"
	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// startApp serves the repository's built models on a loopback port, in-process, and
// returns the address and a client connection; both close when the test ends.
func startApp(t testing.TB, tweak ...func(*config)) (string, *grpc.ClientConn) {
	t.Helper()
	cfg, err := parseConfig([]string{"--model-dir", testenv.ModelDir(t, "classifier"), "--precision", "fp32"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range tweak {
		f(&cfg)
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
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(256<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		a.srv.Shutdown(5 * time.Second)
		<-done
		a.close()
	})
	return lis.Addr().String(), conn
}

// testLog sends the server's log lines to the test's log, shown when a test fails.
type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testSet loads the Fashion-MNIST test split, or fails/skips as testenv decides.
func testSet(t testing.TB) *fashionmnist.Set {
	t.Helper()
	s, err := fashionmnist.Load("", "test")
	if err != nil {
		testenv.Missing(t, "Fashion-MNIST", err.Error())
	}
	return s
}

// greyPNG encodes 28x28 grey pixels as a PNG file.
func greyPNG(t testing.TB, pix []uint8) []byte {
	t.Helper()
	im := &image.Gray{Pix: pix, Stride: fashionmnist.Side, Rect: image.Rect(0, 0, fashionmnist.Side, fashionmnist.Side)}
	var buf bytes.Buffer
	if err := png.Encode(&buf, im); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func encoded(data []byte) *pb.Image { return &pb.Image{Data: &pb.Image_Encoded{Encoded: data}} }
