package server

import (
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/atelier-vision/atelier/internal/models"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// ModelHealthPrefix starts the health service name of each model:
// atelier.model.classifier is SERVING while the model has an AVAILABLE version.
const ModelHealthPrefix = "atelier.model."

// serviceRoles are the roles a service needs AVAILABLE to report SERVING; a service
// not listed is SERVING whenever the server is.
var serviceRoles = map[string][]models.Role{
	pb.ClassifyService_ServiceDesc.ServiceName: {models.RoleClassifier},
	pb.DetectService_ServiceDesc.ServiceName:   {models.RoleDetector, models.RoleClassifier},
	pb.GenerateService_ServiceDesc.ServiceName: {models.RoleGenerator},
}

// SetServing marks the server SERVING (or not); each service then reports SERVING
// only while the models it needs are available.
func (s *Server) SetServing(serving bool) {
	s.healthMu.Lock()
	s.serving = serving
	s.healthMu.Unlock()
	s.updateHealth()
}

// isServing reports what SetServing last said, for the Open Inference Protocol's
// ServerReady.
func (s *Server) isServing() bool {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	return s.serving
}

// updateHealth recomputes every health entry from the repository; it runs at every
// change of the available versions.
func (s *Server) updateHealth() {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	st := func(ok bool) healthpb.HealthCheckResponse_ServingStatus {
		if ok && s.serving {
			return healthpb.HealthCheckResponse_SERVING
		}
		return healthpb.HealthCheckResponse_NOT_SERVING
	}
	s.Health.SetServingStatus("", st(true))
	for name := range s.GRPC.GetServiceInfo() {
		ok := true
		for _, role := range serviceRoles[name] {
			ok = ok && (s.repo == nil || s.repo.Default(role) != "")
		}
		s.Health.SetServingStatus(name, st(ok))
	}
	if s.repo == nil {
		return
	}
	names := s.repo.Names()
	for _, n := range names {
		s.modelHealth[n] = true
		s.Health.SetServingStatus(ModelHealthPrefix+n, st(true))
	}
	for n := range s.modelHealth {
		if !contains(names, n) {
			s.Health.SetServingStatus(ModelHealthPrefix+n, healthpb.HealthCheckResponse_NOT_SERVING)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
