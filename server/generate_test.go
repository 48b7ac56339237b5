package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/generate"
	"github.com/atelier-vision/atelier/internal/models"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// fakeGenerator records requests and answers with canned designs or an error.
type fakeGenerator struct {
	got  any
	err  error
	sent int
}

func (f *fakeGenerator) Generate(_ context.Context, req generate.Request) (generate.Result, error) {
	f.got = req
	if f.err != nil {
		return generate.Result{}, f.err
	}
	return generate.Result{Model: models.Spec{Name: "generator", Version: 1}, Designs: []generate.Design{
		{PNG: []byte("png0"), Category: "Dress", Seed: 7, Seeded: true, Latent: []float32{1, 2}},
		{PNG: []byte("png1"), Category: "Dress", Seed: 99, Latent: []float32{3, 4}},
	}}, nil
}

func (f *fakeGenerator) Interpolate(_ context.Context, req generate.InterpolateRequest, send func(generate.Step) error) error {
	f.got = req
	if f.err != nil {
		return f.err
	}
	for i := range req.Steps {
		if err := send(generate.Step{Index: i, T: float32(i) / float32(req.Steps-1), Design: generate.Design{PNG: []byte{byte(i)}}}); err != nil {
			return err
		}
		f.sent++
	}
	return nil
}

// serveFake serves the fake generate core and returns a client of it.
func serveFake(t *testing.T, core Generator) pb.GenerateServiceClient {
	conn, _ := serve(t, Cores{Generator: core})
	return pb.NewGenerateServiceClient(conn)
}

func TestGenerateConverts(t *testing.T) {
	core := &fakeGenerator{}
	client := serveFake(t, core)
	resp, err := client.Generate(context.Background(), &pb.GenerateRequest{
		Model: &pb.ModelSpec{Name: "g", Version: 2}, Category: "Dress", Count: 5, Seed: 7,
		Latents: []*pb.Latent{{Values: []float32{1, 2}}, {}},
	})
	if err != nil {
		t.Fatal(err)
	}
	req := core.got.(generate.Request)
	if req.Model != (models.Spec{Name: "g", Version: 2}) || req.Category != "Dress" || req.Count != 5 || req.Seed != 7 ||
		len(req.Latents) != 2 || !slices.Equal(req.Latents[0], []float32{1, 2}) || len(req.Latents[1]) != 0 {
		t.Fatalf("core got %+v, want the request's fields", req)
	}
	if len(resp.Images) != 2 || resp.Model.GetName() != "generator" {
		t.Fatalf("got %v, want 2 images from generator", resp)
	}
	first, second := resp.Images[0], resp.Images[1]
	if string(first.Png) != "png0" || first.Seed != 7 || !slices.Equal(first.Latent.GetValues(), []float32{1, 2}) {
		t.Fatalf("image 0: got %v, want png0 from seed 7 with latent [1 2]", first)
	}
	if second.Seed != 0 || !slices.Equal(second.Latent.GetValues(), []float32{3, 4}) {
		t.Fatalf("image 1: got seed %d latent %v, want no seed (latent given) and [3 4]", second.Seed, second.Latent.GetValues())
	}
}

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code codes.Code
		msg  string
	}{
		{"invalid request", fmt.Errorf("%w: count 0 is out of range 1..64", errkind.Invalid), codes.InvalidArgument, "count 0 is out of range"},
		{"no generator", fmt.Errorf("%w: no generator model is loaded", models.ErrNotFound), codes.NotFound, "no generator"},
		{"unexpected", errors.New("tf: session exploded at 0xdeadbeef"), codes.Internal, "internal error; the server log has the details"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := serveFake(t, &fakeGenerator{err: tc.err})
			_, err := client.Generate(context.Background(), &pb.GenerateRequest{})
			if st := status.Convert(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
				t.Fatalf("Generate: got %v, want %v saying %q", err, tc.code, tc.msg)
			}
			stream, err := client.Interpolate(context.Background(), &pb.InterpolateRequest{
				Start: &pb.LatentPoint{Point: &pb.LatentPoint_Seed{Seed: 1}}, End: &pb.LatentPoint{Point: &pb.LatentPoint_Seed{Seed: 2}}})
			if err == nil {
				_, err = stream.Recv()
			}
			if st := status.Convert(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
				t.Fatalf("Interpolate: got %v, want %v saying %q", err, tc.code, tc.msg)
			}
		})
	}
}

func TestInterpolateEnds(t *testing.T) {
	seed := func(s uint64) *pb.LatentPoint { return &pb.LatentPoint{Point: &pb.LatentPoint_Seed{Seed: s}} }
	tests := []struct {
		name       string
		start, end *pb.LatentPoint
		msg        string
		want       generate.InterpolateRequest
	}{
		{"no start", nil, seed(2), "start is required: set start.seed or start.latent", generate.InterpolateRequest{}},
		{"empty end", seed(1), &pb.LatentPoint{}, "end is required: set end.seed or end.latent", generate.InterpolateRequest{}},
		{"seeds", seed(1), seed(2), "", generate.InterpolateRequest{Category: "Coat", Steps: 3,
			Start: generate.Point{Seed: 1}, End: generate.Point{Seed: 2}}},
		{"empty latent is a latent", seed(1), &pb.LatentPoint{Point: &pb.LatentPoint_Latent{Latent: &pb.Latent{}}}, "",
			generate.InterpolateRequest{Category: "Coat", Steps: 3, Start: generate.Point{Seed: 1}, End: generate.Point{Latent: []float32{}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := interpolateRequest(&pb.InterpolateRequest{Category: "Coat", Steps: 3, Start: tc.start, End: tc.end})
			if tc.msg != "" {
				if !errors.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("got %v, want errkind.Invalid saying %q", err, tc.msg)
				}
				return
			}
			if err != nil || got.Start.Seed != tc.want.Start.Seed || got.End.Seed != tc.want.End.Seed ||
				(got.End.Latent == nil) != (tc.want.End.Latent == nil) || got.Steps != 3 || got.Category != "Coat" {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestInterpolateStreamsInOrder(t *testing.T) {
	core := &fakeGenerator{}
	client := serveFake(t, core)
	stream, err := client.Interpolate(context.Background(), &pb.InterpolateRequest{Category: "Bag", Steps: 4,
		Start: &pb.LatentPoint{Point: &pb.LatentPoint_Seed{Seed: 1}},
		End:   &pb.LatentPoint{Point: &pb.LatentPoint_Latent{Latent: &pb.Latent{Values: []float32{0.5}}}}})
	if err != nil {
		t.Fatal(err)
	}
	var steps []uint32
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		steps = append(steps, r.Step)
	}
	if !slices.Equal(steps, []uint32{0, 1, 2, 3}) {
		t.Fatalf("got steps %v, want [0 1 2 3]", steps)
	}
	if req := core.got.(generate.InterpolateRequest); !slices.Equal(req.End.Latent, []float32{0.5}) || req.Start.Latent != nil {
		t.Fatalf("core got %+v, want start seed 1 and end latent [0.5]", req)
	}
}
