package server

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/atelier-vision/atelier/internal/models"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

// syncBuffer is a log sink that tests can read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serve runs the whole server (New: every service, the interceptors) on fake cores
// over an in-memory connection, and returns a connection to it and its log.
func serve(t *testing.T, cores Cores) (*grpc.ClientConn, *syncBuffer) {
	t.Helper()
	return serveWith(t, Options{}, cores)
}

// serveWith is serve with options (security, reflection) of the test's choosing.
func serveWith(t *testing.T, opts Options, cores Cores) (*grpc.ClientConn, *syncBuffer) {
	t.Helper()
	conn, _, logs := serveRepo(t, opts, nil, cores)
	return conn, logs
}

// serveRepo is serveWith over a model repository, and returns the server too.
func serveRepo(t *testing.T, opts Options, repo *models.Repository, cores Cores) (*grpc.ClientConn, *Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	opts.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
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
