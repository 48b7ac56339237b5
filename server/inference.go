package server

import (
	"context"
	"log/slog"
	"runtime/debug"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/internal/batching"
	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/inference"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

// Inference is the core the Open Inference Protocol service calls;
// *inference.Server in production.
type Inference interface {
	Names() []string
	Metadata(name, version string) (inference.Metadata, error)
	Infer(ctx context.Context, req inference.Request) (inference.Response, error)
}

// Extensions returns the Open Inference Protocol extensions a server implements, as
// ServerMetadata reports them: request parameters always, and Triton's model
// repository (RepositoryIndex, RepositoryModelLoad and RepositoryModelUnload) where
// those RPCs answer: with a model lifecycle behind them and tokens on, as they are
// admin-only and off without --auth-tokens-file.
func Extensions(repository bool) []string {
	if repository {
		return []string{"parameters", "model_repository"}
	}
	return []string{"parameters"}
}

// InferenceServer implements inference.GRPCInferenceService, the Open Inference
// Protocol (KServe V2) that Triton's and KServe's clients speak.
type InferenceServer struct {
	oip.UnsafeGRPCInferenceServiceServer
	Core Inference
	// Ready reports whether the server takes requests (SetServing).
	Ready func() bool
	// Control is the model lifecycle behind the repository RPCs
	// (inference_repository.go); nil answers them Unimplemented.
	Control ModelControl
	// Extensions are what ServerMetadata lists (see Extensions).
	Extensions []string
	Log        *slog.Logger
}

// ServerLive answers true while the process serves at all.
func (s *InferenceServer) ServerLive(context.Context, *oip.ServerLiveRequest) (*oip.ServerLiveResponse, error) {
	return &oip.ServerLiveResponse{Live: true}, nil
}

// ServerReady answers whether the server is SERVING (false while starting or draining).
func (s *InferenceServer) ServerReady(context.Context, *oip.ServerReadyRequest) (*oip.ServerReadyResponse, error) {
	return &oip.ServerReadyResponse{Ready: s.Ready()}, nil
}

// ServerMetadata names the server, its version and the extensions it implements.
func (s *InferenceServer) ServerMetadata(context.Context, *oip.ServerMetadataRequest) (*oip.ServerMetadataResponse, error) {
	return &oip.ServerMetadataResponse{Name: "atelier", Version: buildVersion(), Extensions: s.Extensions}, nil
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

// ModelReady answers whether a model version is loaded and the server is ready; an
// unknown model is not ready (as Triton answers), a malformed version is an error.
func (s *InferenceServer) ModelReady(ctx context.Context, req *oip.ModelReadyRequest) (*oip.ModelReadyResponse, error) {
	_, err := s.Core.Metadata(req.GetName(), req.GetVersion())
	if err != nil && !errorsIsNotFound(err) {
		return nil, toStatus(err)
	}
	return &oip.ModelReadyResponse{Ready: err == nil && s.Ready()}, nil
}

// ModelMetadata describes a model's inputs and outputs as its signature defines them.
func (s *InferenceServer) ModelMetadata(ctx context.Context, req *oip.ModelMetadataRequest) (*oip.ModelMetadataResponse, error) {
	md, err := s.Core.Metadata(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &oip.ModelMetadataResponse{Name: md.Name, Versions: md.Versions, Platform: md.Platform,
		Properties: map[string]*oip.InferParameter{}}
	for _, t := range md.Inputs {
		resp.Inputs = append(resp.Inputs, &oip.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape})
	}
	for _, t := range md.Outputs {
		resp.Outputs = append(resp.Outputs, &oip.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape})
	}
	for k, v := range md.Properties {
		resp.Properties[k] = &oip.InferParameter{ParameterChoice: &oip.InferParameter_StringParam{StringParam: v}}
	}
	return resp, nil
}

// ModelInfer runs one request through the model's batcher and answers in
// raw_output_contents.
func (s *InferenceServer) ModelInfer(ctx context.Context, req *oip.ModelInferRequest) (*oip.ModelInferResponse, error) {
	resp, err := s.infer(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// infer is ModelInfer without the status mapping, shared with ModelStreamInfer.
func (s *InferenceServer) infer(ctx context.Context, req *oip.ModelInferRequest) (*oip.ModelInferResponse, error) {
	creq, timeout, err := inferRequest(req)
	if err != nil {
		return nil, err
	}
	if p, ok, err := priorityParam(req.GetParameters()); err != nil {
		return nil, err
	} else if ok {
		ctx = batching.WithPriority(ctx, p)
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	res, err := s.Core.Infer(ctx, creq)
	if err != nil {
		return nil, err
	}
	return inferResponse(req.GetId(), res), nil
}

func errorsIsNotFound(err error) bool {
	return status.Code(toStatus(err)) == codes.NotFound
}

// unimplemented answers an RPC Atelier does not serve, naming it.
func unimplemented(rpc, why string) error {
	return toStatus(errkind.Newf(errkind.Unimplemented, "inference.GRPCInferenceService/%s is not implemented by Atelier: %s", rpc, why))
}

const (
	whyShm      = "shared-memory tensors are not supported; send tensors in the request"
	whyConfig   = "Atelier has no Triton model configuration; ModelMetadata describes inputs and outputs"
	whyStats    = "statistics are on the Prometheus endpoint (--metrics-listen), not in this RPC"
	whySettings = "trace and log settings are not exposed; see --tf-log-level and the server log"
)

// ModelConfig is not implemented.
func (s *InferenceServer) ModelConfig(context.Context, *oip.ModelConfigRequest) (*oip.ModelConfigResponse, error) {
	return nil, unimplemented("ModelConfig", whyConfig)
}

// ModelStatistics is not implemented.
func (s *InferenceServer) ModelStatistics(context.Context, *oip.ModelStatisticsRequest) (*oip.ModelStatisticsResponse, error) {
	return nil, unimplemented("ModelStatistics", whyStats)
}

// SystemSharedMemoryStatus is not implemented.
func (s *InferenceServer) SystemSharedMemoryStatus(context.Context, *oip.SystemSharedMemoryStatusRequest) (*oip.SystemSharedMemoryStatusResponse, error) {
	return nil, unimplemented("SystemSharedMemoryStatus", whyShm)
}

// SystemSharedMemoryRegister is not implemented.
func (s *InferenceServer) SystemSharedMemoryRegister(context.Context, *oip.SystemSharedMemoryRegisterRequest) (*oip.SystemSharedMemoryRegisterResponse, error) {
	return nil, unimplemented("SystemSharedMemoryRegister", whyShm)
}

// SystemSharedMemoryUnregister is not implemented.
func (s *InferenceServer) SystemSharedMemoryUnregister(context.Context, *oip.SystemSharedMemoryUnregisterRequest) (*oip.SystemSharedMemoryUnregisterResponse, error) {
	return nil, unimplemented("SystemSharedMemoryUnregister", whyShm)
}

// CudaSharedMemoryStatus is not implemented.
func (s *InferenceServer) CudaSharedMemoryStatus(context.Context, *oip.CudaSharedMemoryStatusRequest) (*oip.CudaSharedMemoryStatusResponse, error) {
	return nil, unimplemented("CudaSharedMemoryStatus", whyShm)
}

// CudaSharedMemoryRegister is not implemented.
func (s *InferenceServer) CudaSharedMemoryRegister(context.Context, *oip.CudaSharedMemoryRegisterRequest) (*oip.CudaSharedMemoryRegisterResponse, error) {
	return nil, unimplemented("CudaSharedMemoryRegister", whyShm)
}

// CudaSharedMemoryUnregister is not implemented.
func (s *InferenceServer) CudaSharedMemoryUnregister(context.Context, *oip.CudaSharedMemoryUnregisterRequest) (*oip.CudaSharedMemoryUnregisterResponse, error) {
	return nil, unimplemented("CudaSharedMemoryUnregister", whyShm)
}

// TraceSetting is not implemented.
func (s *InferenceServer) TraceSetting(context.Context, *oip.TraceSettingRequest) (*oip.TraceSettingResponse, error) {
	return nil, unimplemented("TraceSetting", whySettings)
}

// LogSettings is not implemented.
func (s *InferenceServer) LogSettings(context.Context, *oip.LogSettingsRequest) (*oip.LogSettingsResponse, error) {
	return nil, unimplemented("LogSettings", whySettings)
}
