package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// DefaultTimeout is the deadline of a unary call when WithTimeout is not given.
const DefaultTimeout = 30 * time.Second

// DefaultMaxMessageBytes matches the server's default request limit (64 MiB).
const DefaultMaxMessageBytes = 64 << 20

// DefaultAttempts is how many times a retryable call is tried (gRPC caps it at 5).
const DefaultAttempts = 5

type settings struct {
	timeout       time.Duration
	streamTimeout time.Duration
	tls           *tls.Config
	insecure      bool
	attempts      int
	maxMsg        int
	resolveEvery  time.Duration
	dialOpts      []grpc.DialOption
}

// Option configures New.
type Option func(*settings)

// WithTimeout sets the deadline of every unary call (default DefaultTimeout). A
// context with an earlier deadline keeps its own.
func WithTimeout(d time.Duration) Option { return func(s *settings) { s.timeout = d } }

// WithStreamTimeout sets a deadline on every stream (ClassifyStream, DetectStream,
// WatchAlerts). The default, 0, lets streams run until their frames end or their
// context is done: a camera's stream lives as long as the camera.
func WithStreamTimeout(d time.Duration) Option { return func(s *settings) { s.streamTimeout = d } }

// WithTLS connects with TLS using cfg (a nil cfg means the system's roots).
func WithTLS(cfg *tls.Config) Option {
	return func(s *settings) {
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		s.tls = cfg
	}
}

// WithInsecure allows plaintext to addresses that are not loopback.
func WithInsecure() Option { return func(s *settings) { s.insecure = true } }

// WithRetries sets how many attempts a retryable call gets on UNAVAILABLE, 1..5
// (default 5); 1 turns retries off, and with them the waiting out of a rate limit's
// retry-after.
func WithRetries(attempts int) Option { return func(s *settings) { s.attempts = attempts } }

// WithResolveInterval sets how often a dns: target is looked up again (default
// DefaultResolveInterval); 0 looks again only when a connection fails.
func WithResolveInterval(d time.Duration) Option { return func(s *settings) { s.resolveEvery = d } }

// WithMaxMessageBytes bounds the messages sent and received (default 64 MiB).
func WithMaxMessageBytes(n int) Option { return func(s *settings) { s.maxMsg = n } }

// WithDialOptions adds raw gRPC dial options, for example a custom dialer in tests.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(s *settings) { s.dialOpts = append(s.dialOpts, opts...) }
}

// TLSConfigFromCA returns a TLS configuration that trusts the PEM certificates in
// caFile (for servers with a private CA, the CLI's --tls-ca).
func TLSConfigFromCA(caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// WithToken sends token as "authorization: Bearer <token>" on every call (the server's
// --auth-tokens-file). Over plaintext the token travels in the clear; use TLS beyond
// loopback.
func WithToken(token string) Option {
	return func(s *settings) {
		s.dialOpts = append(s.dialOpts, grpc.WithPerRPCCredentials(bearerToken(token)))
	}
}

// bearerToken is a token as per-call credentials.
type bearerToken string

// GetRequestMetadata adds the token unless the call carries one of its own (an
// AdminContext), so that a call sends one token, the one it was given.
func (t bearerToken) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if md, _ := metadata.FromOutgoingContext(ctx); len(md.Get("authorization")) > 0 {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

// RequireTransportSecurity is false so that loopback plaintext (tests, sidecars) works;
// New already refuses plaintext beyond loopback without WithInsecure.
func (bearerToken) RequireTransportSecurity() bool { return false }

// PriorityHeader is the metadata key the server reads a call's priority from.
const PriorityHeader = "x-atelier-priority"

// WithPriority sends every call at priority "high", "normal" or "low": the server's
// batcher serves higher priorities first (for one call, add the header to its context
// with metadata.AppendToOutgoingContext).
func WithPriority(priority string) Option {
	return func(s *settings) {
		add := func(ctx context.Context) context.Context {
			return metadata.AppendToOutgoingContext(ctx, PriorityHeader, priority)
		}
		s.dialOpts = append(s.dialOpts,
			grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				return invoker(add(ctx), method, req, reply, cc, opts...)
			}),
			grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
				return streamer(add(ctx), desc, cc, method, opts...)
			}))
	}
}

// TLSConfigFromFiles returns a TLS configuration that trusts the CAs in caFile (the
// system's roots when it is empty) and, when certFile and keyFile are set, presents
// that client certificate (mTLS).
func TLSConfigFromFiles(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		var err error
		if cfg, err = TLSConfigFromCA(caFile); err != nil {
			return nil, err
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("a client certificate needs both its certificate and its key file")
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
