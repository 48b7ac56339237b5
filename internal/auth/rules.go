package auth

import "strings"

// Rule says which role a method needs: every full method name ("/pkg.Service/Method")
// that starts with Prefix. The longest matching prefix wins.
type Rule struct {
	Prefix string
	Role   Role
}

// Public marks a rule whose methods need no token at all.
const Public Role = RoleNone

// DefaultRules is the role table. A method it does not name needs RoleAdmin, so a new
// lifecycle RPC is admin-only until it is listed here.
var DefaultRules = []Rule{
	{"/grpc.health.v1.Health/", Public},
	{"/atelier.v1.ClassifyService/", RoleInfer},
	{"/atelier.v1.DetectService/", RoleInfer},
	{"/atelier.v1.GenerateService/", RoleInfer},
	{"/atelier.v1.AlertService/", RoleInfer},
	{"/atelier.v1.ModelService/ListModels", RoleInfer},
	{"/atelier.v1.ModelService/GetModel", RoleInfer},
	{"/atelier.v1.ModelService/GetModelStatus", RoleInfer},
	// The Open Inference Protocol (KServe V2): inference and metadata; its liveness and
	// readiness checks are probes, open like health.
	{"/inference.GRPCInferenceService/", RoleInfer},
	{"/inference.GRPCInferenceService/ServerLive", Public},
	{"/inference.GRPCInferenceService/ServerReady", Public},
	// Its repository RPCs (RepositoryIndex, RepositoryModelLoad, RepositoryModelUnload)
	// are the model lifecycle: admin, like ModelService's LoadModel and UnloadModel.
	{"/inference.GRPCInferenceService/Repository", RoleAdmin},
}

// ReflectionRules make server reflection open (for grpcurl without a token); without
// them reflection needs RoleInfer.
var ReflectionRules = []Rule{
	{"/grpc.reflection.v1.ServerReflection/", Public},
	{"/grpc.reflection.v1alpha.ServerReflection/", Public},
}

// InferReflectionRules let any infer token use reflection.
var InferReflectionRules = []Rule{
	{"/grpc.reflection.v1.ServerReflection/", RoleInfer},
	{"/grpc.reflection.v1alpha.ServerReflection/", RoleInfer},
}

// Required returns the role method needs under rules (RoleAdmin when no rule matches).
func Required(rules []Rule, method string) Role {
	best, role := -1, RoleAdmin
	for _, r := range rules {
		if strings.HasPrefix(method, r.Prefix) && len(r.Prefix) > best {
			best, role = len(r.Prefix), r.Role
		}
	}
	return role
}
