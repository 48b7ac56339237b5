package server

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// The services below are part of the v1 API but not served yet: each RPC answers
// Unimplemented with a message saying so, as the proto comments promise.

func errMissing(field string) error {
	return fmt.Errorf("%w: %s is required", errInvalidRequest, field)
}

func notYet(rpc string) error {
	return status.Errorf(codes.Unimplemented, "%s is part of the v1 API but not implemented by this server yet", rpc)
}

// DetectServer implements atelier.v1.DetectService.
type DetectServer struct{ pb.UnsafeDetectServiceServer }

// Detect is not implemented yet.
func (DetectServer) Detect(context.Context, *pb.DetectRequest) (*pb.DetectResponse, error) {
	return nil, notYet("Detect")
}

// DetectStream is not implemented yet.
func (DetectServer) DetectStream(pb.DetectService_DetectStreamServer) error {
	return notYet("DetectStream")
}

// GenerateServer implements atelier.v1.GenerateService.
type GenerateServer struct{ pb.UnsafeGenerateServiceServer }

// Generate is not implemented yet.
func (GenerateServer) Generate(context.Context, *pb.GenerateRequest) (*pb.GenerateResponse, error) {
	return nil, notYet("Generate")
}

// Interpolate is not implemented yet.
func (GenerateServer) Interpolate(*pb.InterpolateRequest, pb.GenerateService_InterpolateServer) error {
	return notYet("Interpolate")
}

// AlertServer implements atelier.v1.AlertService.
type AlertServer struct{ pb.UnsafeAlertServiceServer }

// WatchAlerts is not implemented yet.
func (AlertServer) WatchAlerts(*pb.WatchAlertsRequest, pb.AlertService_WatchAlertsServer) error {
	return notYet("WatchAlerts")
}
