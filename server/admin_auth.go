package server

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// adminMethods are the RPCs that change what the server serves.
var adminMethods = map[string]bool{
	pb.ModelService_ReloadRepository_FullMethodName: true,
	pb.ModelService_LoadModel_FullMethodName:        true,
	pb.ModelService_UnloadModel_FullMethodName:      true,
	pb.ModelService_SetVersionLabels_FullMethodName: true,
}

// ReadTokens reads an admin token file: one token per line; blank lines and lines
// starting with '#' are skipped. A file with no token is an error.
func ReadTokens(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("admin token file: %w", err)
	}
	defer f.Close()
	var tokens []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if t := strings.TrimSpace(s.Text()); t != "" && !strings.HasPrefix(t, "#") {
			tokens = append(tokens, t)
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("admin token file %s: %w", path, err)
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("admin token file %s holds no token", path)
	}
	return tokens, nil
}

// adminAuth guards the admin RPCs: off (UNIMPLEMENTED) without tokens; with them, no
// bearer token is UNAUTHENTICATED and an unknown one PERMISSION_DENIED. Tokens are
// compared in constant time (over their SHA-256, so length leaks nothing either) and
// never logged.
func adminAuth(tokens []string) grpc.UnaryServerInterceptor {
	sums := make([][32]byte, len(tokens))
	for i, t := range tokens {
		sums[i] = sha256.Sum256([]byte(t))
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		if !adminMethods[info.FullMethod] {
			return next(ctx, req)
		}
		if len(sums) == 0 {
			return nil, status.Error(codes.Unimplemented, "admin RPCs are off on this server; start atelierd with --admin-token-file to turn them on")
		}
		md, _ := metadata.FromIncomingContext(ctx)
		var got string
		for _, v := range md.Get("authorization") {
			if rest, ok := strings.CutPrefix(v, "Bearer "); ok {
				got = strings.TrimSpace(rest)
			}
		}
		if got == "" {
			return nil, status.Error(codes.Unauthenticated, "admin RPC: send the metadata `authorization: Bearer <token>`")
		}
		sum := sha256.Sum256([]byte(got))
		ok := 0
		for _, s := range sums {
			ok |= subtle.ConstantTimeCompare(sum[:], s[:])
		}
		if ok != 1 {
			return nil, status.Error(codes.PermissionDenied, "admin RPC: the bearer token is not one of the server's admin tokens")
		}
		return next(ctx, req)
	}
}
