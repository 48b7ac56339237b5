package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

// TestRequestDataMakesNoMetricSeries sends what a client controls, different every
// time, through every RPC that takes it, over real gRPC to the real server: unknown
// model names (atelier.v1 and V2's, as "classifier_image" is one), versions and
// labels, camera ids and rule names, unknown tokens and unknown methods. The first
// round may add a series per method and code; the second round, ten times larger,
// must add none: no label of any metric comes from request data, and no token
// reaches /metrics.
func TestRequestDataMakesNoMetricSeries(t *testing.T) {
	a, conn := serveLifecycle(t, testenv.ModelDir(t, "classifier"), "--precision", "fp32")
	set := testSet(t)
	frame := &pb.StreamFrame{Image: rawFrame(set.Images[0])}
	round := func(prefix string, n int) {
		t.Helper()
		for i := range n {
			abuse(t, conn, fmt.Sprintf("%s-%d\n\x1b[31m", prefix, i), int64(1000+i), frame)
		}
	}
	round("warm", 10)
	before := seriesOf(a)
	round("flood", 100)
	after := seriesOf(a)
	if added := slices.DeleteFunc(slices.Clone(after), func(s string) bool { return slices.Contains(before, s) }); len(added) > 0 {
		t.Fatalf("%d distinct bad requests added %d series (%d -> %d), want 0; the first:\n%s",
			100, len(added), len(before), len(after), strings.Join(added[:min(10, len(added))], "\n"))
	}
	var text strings.Builder
	a.metrics.Write(&text)
	for _, secret := range []string{"unknown-token", adminToken, inferToken, "flood-"} {
		if strings.Contains(text.String(), secret) {
			t.Errorf("/metrics holds %q", secret)
		}
	}
	t.Logf("%d series before and after the flood", len(after))
}

// abuse makes one call of each kind with name wherever a client names something.
func abuse(t *testing.T, conn *grpc.ClientConn, name string, version int64, frame *pb.StreamFrame) {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	bad := &pb.ModelSpec{Name: name, Version: version}
	img := []*pb.Image{frame.Image}
	classify := pb.NewClassifyServiceClient(conn)
	models := pb.NewModelServiceClient(conn)
	v2 := oip.NewGRPCInferenceServiceClient(conn)
	calls := []struct {
		what string
		want codes.Code
		call func() error
	}{
		{"Classify(unknown model)", codes.NotFound, func() error {
			_, err := classify.Classify(ctx, &pb.ClassifyRequest{Model: bad, Images: img})
			return err
		}},
		{"Classify(unknown label)", codes.NotFound, func() error {
			_, err := classify.Classify(ctx, &pb.ClassifyRequest{Model: &pb.ModelSpec{Name: "classifier", VersionLabel: name}, Images: img})
			return err
		}},
		{"Detect", codes.NotFound, func() error {
			_, err := pb.NewDetectServiceClient(conn).Detect(ctx, &pb.DetectRequest{Model: bad, Image: frame.Image})
			return err
		}},
		{"Generate", codes.NotFound, func() error {
			_, err := pb.NewGenerateServiceClient(conn).Generate(ctx, &pb.GenerateRequest{Model: bad, Category: name, Count: 1})
			return err
		}},
		{"GetModel", codes.NotFound, func() error {
			_, err := models.GetModel(ctx, &pb.GetModelRequest{Model: bad})
			return err
		}},
		{"GetModelStatus", codes.NotFound, func() error {
			_, err := models.GetModelStatus(ctx, &pb.GetModelStatusRequest{Name: name})
			return err
		}},
		{"LoadModel", codes.NotFound, func() error {
			_, err := models.LoadModel(admin(ctx), &pb.LoadModelRequest{Model: bad})
			return err
		}},
		{"UnloadModel", codes.NotFound, func() error {
			_, err := models.UnloadModel(admin(ctx), &pb.UnloadModelRequest{Model: bad})
			return err
		}},
		{"SetVersionLabels", codes.FailedPrecondition, func() error {
			_, err := models.SetVersionLabels(admin(ctx), &pb.SetVersionLabelsRequest{Name: "classifier", VersionLabels: map[string]int64{fmt.Sprintf("l%d", version): version}})
			return err
		}},
		{"V2 ModelInfer", codes.NotFound, func() error {
			_, err := v2.ModelInfer(ctx, &oip.ModelInferRequest{ModelName: name + "_image"})
			return err
		}},
		{"V2 ModelMetadata", codes.NotFound, func() error {
			_, err := v2.ModelMetadata(ctx, &oip.ModelMetadataRequest{Name: name})
			return err
		}},
		{"V2 ModelReady (answers ready: false)", codes.OK, func() error {
			_, err := v2.ModelReady(ctx, &oip.ModelReadyRequest{Name: name})
			return err
		}},
		{"V2 RepositoryModelLoad", codes.NotFound, func() error {
			_, err := v2.RepositoryModelLoad(admin(ctx), &oip.RepositoryModelLoadRequest{ModelName: name})
			return err
		}},
		{"ListModels(unknown token)", codes.Unauthenticated, func() error {
			_, err := models.ListModels(metadata.AppendToOutgoingContext(ctx, "authorization", fmt.Sprintf("Bearer unknown-token-%d", version)), &pb.ListModelsRequest{})
			return err
		}},
		{"unknown method", codes.Unimplemented, func() error {
			return conn.Invoke(ctx, fmt.Sprintf("/atelier.v1.Nope%d/Call", version), &emptypb.Empty{}, &emptypb.Empty{})
		}},
		{"ClassifyStream(camera id, rule name)", codes.OK, func() error {
			return classifyStream(admin(ctx), conn, &pb.ClassifyStreamConfig{Options: &pb.StreamOptions{CameraId: name,
				AlertRules: []*pb.AlertRule{{Name: name, Categories: []string{"Dress"}}}}}, []*pb.StreamFrame{frame}, false).err
		}},
	}
	for _, c := range calls {
		if err := c.call(); status.Code(err) != c.want {
			t.Fatalf("%s: got %v, want %v", c.what, err, c.want)
		}
	}
}

// seriesOf returns the app's metric series (name and labels, without values),
// sorted.
func seriesOf(a *app) []string {
	var b strings.Builder
	a.metrics.Write(&b)
	var out []string
	for _, line := range strings.Split(b.String(), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line[:strings.LastIndexByte(line, ' ')])
	}
	slices.Sort(out)
	return out
}
