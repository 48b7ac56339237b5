package main

import (
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

func TestHealthServing(t *testing.T) {
	_, conn := startApp(t)
	h := healthpb.NewHealthClient(conn)
	for _, service := range []string{"", "atelier.v1.ClassifyService", "atelier.v1.ModelService"} {
		resp, err := h.Check(ctxFor(t, 10*time.Second), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("Check(%q): %v", service, err)
		}
		if resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check(%q): got %v, want SERVING", service, resp.Status)
		}
	}
}

func TestModelService(t *testing.T) {
	_, conn := startApp(t)
	client := pb.NewModelServiceClient(conn)
	list, err := client.ListModels(ctxFor(t, 10*time.Second), &pb.ListModelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var m *pb.ModelInfo
	for _, info := range list.Models {
		if info.Name == "classifier" {
			m = info
		}
	}
	if m == nil {
		t.Fatalf("ListModels: no classifier in %v", list.Models)
	}
	if m.Role != pb.ModelRole_MODEL_ROLE_CLASSIFIER || len(m.Versions) != 1 || m.Versions[0].Version != 1 {
		t.Fatalf("got %v, want role CLASSIFIER with version 1", m)
	}
	v := m.Versions[0]
	if len(v.Labels) != 10 || v.Labels[0] != "T-shirt/top" || v.Labels[9] != "Ankle boot" {
		t.Fatalf("got labels %v, want the 10 Fashion-MNIST categories", v.Labels)
	}
	var serving *pb.Signature
	for _, s := range v.Signatures {
		if s.Name == "serving_default" {
			serving = s
		}
	}
	if serving == nil || len(serving.Inputs) != 1 || serving.Inputs[0].Name != "images" ||
		serving.Inputs[0].Dtype != "uint8" || !slices.Equal(serving.Inputs[0].Shape, []int64{-1, 28, 28, 1}) {
		t.Fatalf("got serving signature %v, want images uint8 [-1 28 28 1]", serving)
	}
	if serving.Outputs[0].Name != "probabilities" || !slices.Equal(serving.Outputs[0].Shape, []int64{-1, 10}) {
		t.Fatalf("got outputs %v, want probabilities [-1 10]", serving.Outputs)
	}

	_, err = client.GetModel(ctxFor(t, 10*time.Second), &pb.GetModelRequest{Model: &pb.ModelSpec{Name: "nope"}})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("GetModel(nope): got %v, want NotFound", err)
	}
	_, err = client.GetModel(ctxFor(t, 10*time.Second), &pb.GetModelRequest{})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("GetModel(no name): got %v, want InvalidArgument", err)
	}
}

// TestGrpcurl drives the server with grpcurl using reflection only (no proto files).
func TestGrpcurl(t *testing.T) {
	addr, _ := startApp(t)
	grpcurl := testenv.Tool(t, "grpcurl")
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(grpcurl, append([]string{"-plaintext"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("grpcurl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	services := run(addr, "list")
	for _, want := range []string{"atelier.v1.ClassifyService", "atelier.v1.ModelService", "atelier.v1.DetectService",
		"atelier.v1.GenerateService", "atelier.v1.AlertService", "grpc.health.v1.Health"} {
		if !strings.Contains(services, want) {
			t.Fatalf("grpcurl list: %q lacks %s", services, want)
		}
	}
	body, _ := json.Marshal(map[string]any{
		"images": []any{map[string]any{"encoded": base64.StdEncoding.EncodeToString(greyPNG(t, testSet(t).Images[0]))}},
		"top_k":  3,
	})
	out := run("-d", string(body), addr, "atelier.v1.ClassifyService/Classify")
	var resp struct {
		Classifications []struct {
			Predictions []struct {
				Label string  `json:"label"`
				Score float64 `json:"score"`
			} `json:"predictions"`
		} `json:"classifications"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("grpcurl output is not JSON: %v\n%s", err, out)
	}
	if len(resp.Classifications) != 1 || len(resp.Classifications[0].Predictions) != 3 {
		t.Fatalf("got %s, want one classification with 3 predictions", out)
	}
	if got := resp.Classifications[0].Predictions[0].Label; got != "Ankle boot" {
		t.Fatalf("got top label %q, want Ankle boot", got)
	}
	health := run(addr, "grpc.health.v1.Health/Check")
	if !strings.Contains(health, "SERVING") {
		t.Fatalf("health check: got %s", health)
	}
}
