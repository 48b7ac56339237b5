package client_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/client"
	"github.com/atelier-vision/atelier/internal/testcerts"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

func TestTLS(t *testing.T) {
	cert, ca := testcerts.LocalhostServer(t)
	trusted, err := client.TLSConfigFromCA(ca)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		addrs string
		opts  []client.Option
		want  codes.Code
	}{
		{"trusted CA", "127.0.0.1:1", []client.Option{client.WithTLS(trusted)}, codes.OK},
		{"trusted CA, round robin", "127.0.0.1:1,127.0.0.1:2", []client.Option{client.WithTLS(trusted)}, codes.OK},
		{"system roots do not trust it", "127.0.0.1:1", []client.Option{client.WithTLS(nil)}, codes.Unavailable},
		{"plaintext to a TLS server", "127.0.0.1:1", nil, codes.Unavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := serveStubs(t, &cert, "127.0.0.1:1", "127.0.0.1:2")
			for _, s := range n.stubs {
				s.listModels = func(context.Context, *pb.ListModelsRequest) (*pb.ListModelsResponse, error) {
					return &pb.ListModelsResponse{Models: []*pb.ModelInfo{{Name: "classifier"}}}, nil
				}
			}
			c := newClient(t, n, tc.addrs, append(tc.opts, client.WithRetries(1), client.WithTimeout(5*time.Second))...)
			models, err := c.ListModels(context.Background())
			if got := status.Code(err); got != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.want == codes.OK && (len(models) != 1 || models[0].Name != "classifier") {
				t.Fatalf("got models %v, want [classifier]", models)
			}
		})
	}
}

func TestTLSConfigFromCAErrors(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	for name, tc := range map[string]struct{ file, want string }{
		"missing file": {filepath.Join(t.TempDir(), "nope.pem"), "no such file"},
		"not PEM":      {notPEM, "holds no PEM certificate"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := client.TLSConfigFromCA(tc.file); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
