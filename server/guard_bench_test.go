package server

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/atelier-vision/atelier/internal/auth"
)

// BenchmarkGuardAdmit is the token check's own cost per call: parse the metadata,
// hash the token, compare it with every entry of a file of n tokens, apply the role.
// `make bench-security` measures the same end to end.
func BenchmarkGuardAdmit(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			var file strings.Builder
			for i := range n {
				fmt.Fprintf(&file, "token-%020d infer\n", i)
			}
			table, err := auth.Parse([]byte(file.String()))
			if err != nil {
				b.Fatal(err)
			}
			g := &guard{Security{Tokens: auth.NewStatic(table), Rules: auth.DefaultRules}}
			ctx := metadata.NewIncomingContext(context.Background(),
				metadata.Pairs("authorization", fmt.Sprintf("Bearer token-%020d", n-1)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := g.admit(ctx, "/atelier.v1.ClassifyService/Classify"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
