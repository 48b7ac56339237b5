package client

import (
	"context"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// Classify returns the top categories of each image in req, in request order. opts
// are per-call gRPC options, for example grpc.Peer to learn which server answered.
func (c *Client) Classify(ctx context.Context, req *pb.ClassifyRequest, opts ...grpc.CallOption) (*pb.ClassifyResponse, error) {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	return c.classify.Classify(ctx, req, opts...)
}

// ClassifyImages classifies images with the server's default classifier and returns
// topK categories per image (topK 0 means the server's default, 5).
func (c *Client) ClassifyImages(ctx context.Context, topK int, images ...*pb.Image) ([]*pb.Classification, error) {
	req := &pb.ClassifyRequest{Images: images}
	if topK != 0 {
		k := int32(topK)
		req.TopK = &k
	}
	resp, err := c.Classify(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp.Classifications, nil
}

// Detect finds the garments in one image and, unless req skips it, classifies each.
func (c *Client) Detect(ctx context.Context, req *pb.DetectRequest, opts ...grpc.CallOption) (*pb.DetectResponse, error) {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	return c.detect.Detect(ctx, req, opts...)
}

// Generate draws new designs of one category; the same request draws the same PNGs.
func (c *Client) Generate(ctx context.Context, req *pb.GenerateRequest, opts ...grpc.CallOption) (*pb.GenerateResponse, error) {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	return c.generate.Generate(ctx, req, opts...)
}

// ListModels returns every loaded model, sorted by name.
func (c *Client) ListModels(ctx context.Context) ([]*pb.ModelInfo, error) {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.models.ListModels(ctx, &pb.ListModelsRequest{})
	if err != nil {
		return nil, err
	}
	return resp.Models, nil
}

// GetModel describes one model; version 0 describes every loaded version.
func (c *Client) GetModel(ctx context.Context, name string, version int64) (*pb.ModelInfo, error) {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.models.GetModel(ctx, &pb.GetModelRequest{Model: &pb.ModelSpec{Name: name, Version: version}})
	if err != nil {
		return nil, err
	}
	return resp.Model, nil
}

// Health returns the serving status of service ("" is the whole server).
func (c *Client) Health(ctx context.Context, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN, err
	}
	return resp.Status, nil
}
