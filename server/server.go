package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/atelier-vision/atelier/internal/auth"
	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/metrics"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/stream"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

// Options configures New.
type Options struct {
	// MaxMessageBytes bounds a request; a bigger one gets ResourceExhausted.
	MaxMessageBytes int
	Log             *slog.Logger
	// Metrics counts calls; nil counts nothing.
	Metrics *metrics.Registry
	// Security turns on tokens, roles and admission limits (guard.go).
	Security Security
	// NoReflection leaves server reflection out.
	NoReflection bool
	// GRPC adds server options: transport credentials, keepalive, stream limits.
	GRPC []grpc.ServerOption
}

// Server is Atelier's gRPC server: the v1 services, health and reflection.
type Server struct {
	GRPC   *grpc.Server
	Health *health.Server

	repo        *models.Repository
	healthMu    sync.Mutex
	serving     bool
	modelHealth map[string]bool // models ever reported, so a removed one turns NOT_SERVING
}

// Cores are the request paths the services call. Each is an interface so handler
// tests can use fakes.
type Cores struct {
	Classifier Classifier
	Generator  Generator
	Detector   Detector
	// Alerts fans the streams' alerts out to WatchAlerts; nil gives the server its own hub.
	Alerts *stream.Hub
	// Inference serves the Open Inference Protocol (inference.GRPCInferenceService);
	// nil leaves it out.
	Inference Inference
	// Models is the model lifecycle behind ModelService's status and admin RPCs.
	Models ModelControl
}

// New builds the gRPC server with every v1 service, the Open Inference Protocol when
// cores.Inference is set, grpc.health.v1 (NOT_SERVING until
// SetServing) and server reflection.
func New(opts Options, repo *models.Repository, cores Cores) *Server {
	log := opts.Log
	g := &guard{opts.Security}
	if g.Rules == nil {
		g.Rules = auth.DefaultRules
	}
	access := newAccessLog(log, opts.Metrics)
	s := grpc.NewServer(append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(opts.MaxMessageBytes),
		grpc.ChainUnaryInterceptor(access.unary(), unaryRecover(), g.unary()),
		grpc.ChainStreamInterceptor(access.stream(), streamRecover(), g.stream()),
	}, opts.GRPC...)...)
	if cores.Alerts == nil {
		cores.Alerts = stream.NewHub(0)
	}
	pb.RegisterClassifyServiceServer(s, &ClassifyServer{Core: cores.Classifier, Hub: cores.Alerts, Log: log})
	pb.RegisterModelServiceServer(s, &ModelServer{Repo: repo, Control: cores.Models, Log: log})
	pb.RegisterDetectServiceServer(s, &DetectServer{Core: cores.Detector, Hub: cores.Alerts, Log: log})
	pb.RegisterGenerateServiceServer(s, &GenerateServer{Core: cores.Generator, Log: log})
	pb.RegisterAlertServiceServer(s, &AlertServer{Hub: cores.Alerts, Log: log})
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s, h)
	srv := &Server{GRPC: s, Health: h, repo: repo, modelHealth: map[string]bool{}}
	if cores.Inference != nil {
		oip.RegisterGRPCInferenceServiceServer(s, &InferenceServer{Core: cores.Inference, Ready: srv.isServing, Control: cores.Models,
			Extensions: Extensions(cores.Models != nil && g.Tokens != nil), Log: log})
	}
	if !opts.NoReflection {
		reflection.Register(s)
	}
	if repo != nil {
		repo.OnChange(srv.updateHealth) // health follows availability (health.go)
	}
	srv.updateHealth() // every service NOT_SERVING until SetServing
	return srv
}

// Shutdown marks the server NOT_SERVING, lets in-flight calls finish for up to grace,
// then stops it hard.
func (s *Server) Shutdown(grace time.Duration) {
	s.SetServing(false)
	done := make(chan struct{})
	go func() {
		s.GRPC.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		s.GRPC.Stop()
		<-done
	}
}

// unaryRecover turns a handler's panic into an internal error; the logging
// interceptor outside it logs the panic and its stack once.
func unaryRecover() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if err != nil {
				err = toStatus(err)
			}
		}()
		defer errkind.Recover(&err)
		return next(ctx, req)
	}
}

// streamRecover is unaryRecover for streaming handlers.
func streamRecover() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) (err error) {
		defer func() {
			if err != nil {
				err = toStatus(err)
			}
		}()
		defer errkind.Recover(&err)
		return next(srv, ss)
	}
}
