package server

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/testenv"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

// serve runs the whole server (New: every service, the interceptors) on fake cores
// over an in-memory connection, and returns a connection to it and its log.
func serve(t *testing.T, cores Cores) (*grpc.ClientConn, *testenv.Buffer) {
	t.Helper()
	return serveWith(t, Options{}, cores)
}

// serveWith is serve with options (security, reflection) of the test's choosing.
func serveWith(t *testing.T, opts Options, cores Cores) (*grpc.ClientConn, *testenv.Buffer) {
	t.Helper()
	conn, _, logs := serveRepo(t, opts, nil, cores)
	return conn, logs
}

// serveRepo is serveWith over a model repository, and returns the server too.
func serveRepo(t *testing.T, opts Options, repo *models.Repository, cores Cores) (*grpc.ClientConn, *Server, *testenv.Buffer) {
	t.Helper()
	return serveLevel(t, slog.LevelDebug, opts, repo, cores)
}

// serveLevel is serveRepo with a log at level (atelierd's default is info).
func serveLevel(t *testing.T, level slog.Level, opts Options, repo *models.Repository, cores Cores) (*grpc.ClientConn, *Server, *testenv.Buffer) {
	t.Helper()
	logs := &testenv.Buffer{}
	opts.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))
	opts.MaxMessageBytes = 4 << 20
	srv := New(opts, repo, cores)
	lis := bufconn.Listen(1 << 20)
	go srv.GRPC.Serve(lis)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); srv.GRPC.Stop() })
	return conn, srv, logs
}
