//go:build cgo

package client_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/client"
	"github.com/atelier-vision/atelier/internal/servertest"
	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

func TestMain(m *testing.M) { os.Exit(servertest.Main(m)) }

// liveClient connects to the shared real server.
func liveClient(t *testing.T, opts ...client.Option) *client.Client {
	t.Helper()
	srv := servertest.SharedT(t)
	c, err := client.New(srv.Addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sampleBoot(t *testing.T) string {
	return filepath.Join(testenv.Root(t), "docs", "images", "sample_boot.png")
}

// TestLiveImageSourcesAgree: a file, its bytes and its decoded image.Image give the
// same classification, and the answer is well formed.
func TestLiveImageSourcesAgree(t *testing.T) {
	c := liveClient(t)
	path := sampleBoot(t)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := client.ImageFile(path)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	sources := []struct {
		name string
		img  *pb.Image
	}{{"file", fromFile}, {"bytes", client.ImageBytes(raw)}, {"image.Image", client.ImageOf(decoded)}}
	var first *pb.Classification
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			got, err := c.ClassifyImages(context.Background(), 10, src.img)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || len(got[0].Predictions) != 10 {
				t.Fatalf("got %d classifications, want 1 with 10 predictions", len(got))
			}
			sum := 0.0
			for i, p := range got[0].Predictions {
				sum += float64(p.Score)
				if i > 0 && p.Score > got[0].Predictions[i-1].Score {
					t.Fatalf("prediction %d scores %v, above the one before", i, p.Score)
				}
			}
			if math.Abs(sum-1) > 1e-4 {
				t.Fatalf("the 10 class probabilities sum to %v, want 1", sum)
			}
			if first == nil {
				first = got[0]
				return
			}
			for i, p := range got[0].Predictions {
				w := first.Predictions[i]
				if p.ClassIndex != w.ClassIndex || p.Label != w.Label || math.Abs(float64(p.Score-w.Score)) > 1e-6 {
					t.Fatalf("prediction %d: got %s %v, want %s %v (from the file)", i, p.Label, p.Score, w.Label, w.Score)
				}
			}
		})
	}
}

func TestLiveModelsAndHealth(t *testing.T) {
	c := liveClient(t)
	ctx := context.Background()
	models, err := c.ListModels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, m := range models {
		found = found || (m.Name == "classifier" && m.Role == pb.ModelRole_MODEL_ROLE_CLASSIFIER)
	}
	if !found {
		t.Fatalf("ListModels: no classifier with the classifier role in %v", models)
	}
	info, err := c.GetModel(ctx, "classifier", 0)
	if err != nil {
		t.Fatal(err)
	}
	if labels := info.Versions[0].Labels; len(labels) != 10 || labels[0] != "T-shirt/top" || labels[9] != "Ankle boot" {
		t.Fatalf("GetModel labels %v, want the 10 Fashion-MNIST classes", labels)
	}
	if _, err := c.GetModel(ctx, "no-such-model", 0); status.Code(err) != codes.NotFound {
		t.Fatalf("GetModel of an unknown model: got %v, want NotFound", err)
	}
	if st, err := c.Health(ctx, ""); err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Health: got %v, %v; want SERVING", st, err)
	}
	if st, err := c.Health(ctx, "atelier.v1.ClassifyService"); err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Health of ClassifyService: got %v, %v; want SERVING", st, err)
	}
}

// liveRPCs calls each RPC of the API once; servertest's rpcs.json says what each
// should answer today.
var liveRPCs = []struct {
	name string
	call func(ctx context.Context, c *client.Client, img *pb.Image) error
}{
	{"Classify", func(ctx context.Context, c *client.Client, img *pb.Image) error {
		_, err := c.ClassifyImages(ctx, 1, img)
		return err
	}},
	{"ListModels", func(ctx context.Context, c *client.Client, _ *pb.Image) error {
		_, err := c.ListModels(ctx)
		return err
	}},
	{"GetModel", func(ctx context.Context, c *client.Client, _ *pb.Image) error {
		_, err := c.GetModel(ctx, "classifier", 0)
		return err
	}},
	{"GetModelStatus", func(ctx context.Context, c *client.Client, _ *pb.Image) error {
		sts, err := c.ModelStatus(ctx, "classifier")
		if err == nil && sts[0].Versions[0].State != pb.VersionState_VERSION_STATE_AVAILABLE {
			err = fmt.Errorf("classifier's newest version is %v, want AVAILABLE", sts[0].Versions[0].State)
		}
		return err
	}},
	{"Health", func(ctx context.Context, c *client.Client, _ *pb.Image) error {
		_, err := c.Health(ctx, "")
		return err
	}},
	{"Detect", func(ctx context.Context, c *client.Client, img *pb.Image) error {
		_, err := c.Detect(ctx, &pb.DetectRequest{Image: img})
		return err
	}},
	{"Generate", func(ctx context.Context, c *client.Client, _ *pb.Image) error {
		resp, err := c.Generate(ctx, &pb.GenerateRequest{Category: "Dress", Count: 2, Seed: 1})
		if err == nil && len(resp.Images) != 2 {
			return fmt.Errorf("got %d designs, want 2", len(resp.Images))
		}
		return err
	}},
	{"Interpolate", func(ctx context.Context, c *client.Client, _ *pb.Image) error {
		steps := 0
		err := c.Interpolate(ctx, &pb.InterpolateRequest{Category: "Dress", Steps: 3,
			Start: &pb.LatentPoint{Point: &pb.LatentPoint_Seed{Seed: 1}}, End: &pb.LatentPoint{Point: &pb.LatentPoint_Seed{Seed: 2}}},
			func(*pb.InterpolateResponse) error { steps++; return nil })
		if err == nil && steps != 3 {
			return fmt.Errorf("got %d steps, want 3", steps)
		}
		return err
	}},
	{"ClassifyStream", func(ctx context.Context, c *client.Client, img *pb.Image) error {
		results := 0
		err := c.ClassifyStream(ctx, &pb.ClassifyStreamConfig{}, client.Frames(repeat(img, 3)),
			func(m *pb.ClassifyStreamResponse) error {
				if m.GetResult() != nil {
					results++
				}
				return nil
			})
		if err == nil && results != 3 {
			return fmt.Errorf("got %d results for 3 frames", results)
		}
		return err
	}},
	{"DetectStream", func(ctx context.Context, c *client.Client, img *pb.Image) error {
		results := 0
		err := c.DetectStream(ctx, &pb.DetectStreamConfig{}, client.Frames(repeat(img, 3)),
			func(m *pb.DetectStreamResponse) error {
				if m.GetResult() != nil {
					results++
				}
				return nil
			})
		if err == nil && results != 3 {
			return fmt.Errorf("got %d results for 3 frames", results)
		}
		return err
	}},
	{"WatchAlerts", func(ctx context.Context, c *client.Client, _ *pb.Image) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second) // alerts never end by themselves
		defer cancel()
		err := c.WatchAlerts(ctx, &pb.WatchAlertsRequest{}, nil, func(*pb.Alert) error { return nil })
		if status.Code(err) == codes.DeadlineExceeded {
			return nil
		}
		return err
	}},
}

func repeat(img *pb.Image, n int) func(func(*pb.Image) bool) {
	return func(yield func(*pb.Image) bool) {
		for range n {
			if !yield(img) {
				return
			}
		}
	}
}

// TestLiveEveryRPC calls every RPC of the API on the real server.
func TestLiveEveryRPC(t *testing.T) {
	c := liveClient(t)
	img, err := client.ImageFile(sampleBoot(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(liveRPCs) != len(servertest.RPCs) {
		t.Fatalf("liveRPCs has %d rows, rpcs.json %d: every RPC needs a row", len(liveRPCs), len(servertest.RPCs))
	}
	for _, rpc := range liveRPCs {
		t.Run(rpc.name, func(t *testing.T) {
			servertest.Require(t, rpc.name)
			if err := rpc.call(context.Background(), c, img); err != nil {
				t.Fatal(err)
			}
		})
	}
}
