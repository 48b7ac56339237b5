package server

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/atelier-vision/atelier/internal/auth"
	"github.com/atelier-vision/atelier/internal/certs"
	"github.com/atelier-vision/atelier/internal/classify"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/testcerts"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// BenchmarkTransport is the server's per-call cost of TLS and tokens without a model:
// Classify of one 28x28 RGB frame (a fake core) over loopback TCP, 16 callers. The
// differences between the cases are what TLS and the token check add to each call;
// bench/security.sh measures them end to end with the real classifier.
func BenchmarkTransport(b *testing.B) {
	ca := testcerts.NewCA(b, "bench")
	srvPair := ca.Issue(b, "server", testcerts.Options{})
	cliPair := ca.Issue(b, "client", testcerts.Options{Client: true})
	table, err := auth.Parse([]byte(inferToken + " infer\n"))
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name          string
		tls, mtls, tk bool
	}{{"plaintext", false, false, false}, {"tokens", false, false, true}, {"tls", true, false, false}, {"mtls+tokens", true, true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			opts := Options{MaxMessageBytes: 4 << 20, Log: log}
			cliCreds := insecure.NewCredentials()
			if tc.tls {
				files := certs.Files{Cert: srvPair.CertFile, Key: srvPair.KeyFile}
				var client *testcerts.Pair
				if tc.mtls {
					files.ClientCA, client = ca.CertFile, &cliPair
				}
				r, err := certs.New(files, log)
				if err != nil {
					b.Fatal(err)
				}
				opts.GRPC = []grpc.ServerOption{grpc.Creds(credentials.NewTLS(r.Config("h2")))}
				cliCreds = credentials.NewTLS(testcerts.ClientConfig(b, ca, client))
			}
			dial := []grpc.DialOption{grpc.WithTransportCredentials(cliCreds)}
			if tc.tk {
				opts.Security = Security{Tokens: auth.NewStatic(table)}
				dial = append(dial, grpc.WithPerRPCCredentials(benchToken{}))
			}
			srv := New(opts, nil, Cores{Classifier: &benchClassifier{}})
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go srv.GRPC.Serve(lis)
			defer srv.GRPC.Stop()
			conn, err := grpc.NewClient(lis.Addr().String(), dial...)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			client := pb.NewClassifyServiceClient(conn)
			req := &pb.ClassifyRequest{Images: []*pb.Image{grey(28, 28, 1)}}
			if _, err := client.Classify(context.Background(), req); err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(8) // 16 callers on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := client.Classify(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

type benchToken struct{}

func (benchToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + inferToken}, nil
}
func (benchToken) RequireTransportSecurity() bool { return false }

// benchClassifier answers every image with one fixed prediction (safe for concurrent use).
type benchClassifier struct{}

func (*benchClassifier) Labels(models.Spec) (map[string][]string, error) { return nil, nil }

func (*benchClassifier) Classify(_ context.Context, req classify.Request) (classify.Result, error) {
	res := classify.Result{Model: models.Spec{Name: "fake", Version: 1}}
	for range req.Images {
		res.Predictions = append(res.Predictions, []classify.Prediction{{Label: "Dress", Index: 3, Score: 0.75}})
	}
	return res, nil
}
