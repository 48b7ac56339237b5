package server

import (
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

// adminMethods are the RPCs that change what the server serves. They need the admin
// role (internal/auth's rules give every unlisted method to admin); on a server
// without --auth-tokens-file, where nobody holds a role, they are off.
var adminMethods = map[string]bool{
	pb.ModelService_ReloadRepository_FullMethodName: true,
	pb.ModelService_LoadModel_FullMethodName:        true,
	pb.ModelService_UnloadModel_FullMethodName:      true,
	pb.ModelService_SetVersionLabels_FullMethodName: true,
	// The Open Inference Protocol's repository RPCs: the same lifecycle (the index
	// too, as Triton groups it with load and unload).
	oip.GRPCInferenceService_RepositoryIndex_FullMethodName:       true,
	oip.GRPCInferenceService_RepositoryModelLoad_FullMethodName:   true,
	oip.GRPCInferenceService_RepositoryModelUnload_FullMethodName: true,
}
