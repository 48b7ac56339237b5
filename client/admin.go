package client

import (
	"context"

	"google.golang.org/grpc/metadata"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// AdminContext returns ctx carrying `authorization: Bearer <token>`, which the
// server's admin RPCs (ReloadRepository, LoadModel, UnloadModel, SetVersionLabels) need
// (a token of the admin role from the server's --auth-tokens-file).
func AdminContext(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// ModelStatus returns the lifecycle state of every version of the named model, or
// of every model when name is empty.
func (c *Client) ModelStatus(ctx context.Context, name string) ([]*pb.ModelStatus, error) {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.models.GetModelStatus(ctx, &pb.GetModelStatusRequest{Name: name})
	if err != nil {
		return nil, err
	}
	return resp.Models, nil
}

// ReloadRepository asks the server to re-read its model config and rescan its model
// folder; with wait it answers once the loads it started have ended. ctx must carry
// the admin token (AdminContext).
func (c *Client) ReloadRepository(ctx context.Context, wait bool) ([]*pb.ModelStatus, error) {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.models.ReloadRepository(ctx, &pb.ReloadRepositoryRequest{Wait: wait})
	if err != nil {
		return nil, err
	}
	return resp.Models, nil
}

// LoadModel pins one version and returns its status once it is AVAILABLE or FAILED.
func (c *Client) LoadModel(ctx context.Context, name string, version int64) (*pb.VersionStatus, error) {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.models.LoadModel(ctx, &pb.LoadModelRequest{Model: &pb.ModelSpec{Name: name, Version: version}})
	if err != nil {
		return nil, err
	}
	return resp.Version, nil
}

// UnloadModel evicts one version; its in-flight calls finish on it.
func (c *Client) UnloadModel(ctx context.Context, name string, version int64) error {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	_, err := c.models.UnloadModel(ctx, &pb.UnloadModelRequest{Model: &pb.ModelSpec{Name: name, Version: version}})
	return err
}

// SetVersionLabels points labels of a model at versions (0 removes a label) and
// returns the model's labels afterwards.
func (c *Client) SetVersionLabels(ctx context.Context, name string, labels map[string]int64) (map[string]int64, error) {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.models.SetVersionLabels(ctx, &pb.SetVersionLabelsRequest{Name: name, VersionLabels: labels})
	if err != nil {
		return nil, err
	}
	return resp.VersionLabels, nil
}
