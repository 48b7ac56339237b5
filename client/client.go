package client

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// Client is a connection to one Atelier server or a round-robin set of them. It is
// safe for concurrent use; Close it when done.
type Client struct {
	conn          *grpc.ClientConn
	timeout       time.Duration
	streamTimeout time.Duration

	classify pb.ClassifyServiceClient
	detect   pb.DetectServiceClient
	generate pb.GenerateServiceClient
	models   pb.ModelServiceClient
	alerts   pb.AlertServiceClient
	health   healthpb.HealthClient
}

// New connects to addrs: one address ("localhost:8500", or any gRPC target such as
// "dns:///atelier-headless:8500") or a comma-separated list of host:port addresses.
// Every address a target resolves to is balanced round-robin, and only servers whose
// grpc.health.v1 status is SERVING get calls (given a list or a dns: target). A dns: target (optionally naming its DNS
// server: "dns://10.96.0.10:53/name:8500") is looked up again every
// DefaultResolveInterval, so replicas that come and go are followed. New does not wait
// for a connection; the first call does.
func New(addrs string, opts ...Option) (*Client, error) {
	s := settings{timeout: DefaultTimeout, attempts: DefaultAttempts, maxMsg: DefaultMaxMessageBytes,
		resolveEvery: DefaultResolveInterval}
	for _, o := range opts {
		o(&s)
	}
	if s.timeout <= 0 {
		return nil, fmt.Errorf("client: timeout %v must be positive", s.timeout)
	}
	if s.resolveEvery < 0 {
		return nil, fmt.Errorf("client: resolve interval %v is negative", s.resolveEvery)
	}
	if s.attempts < 1 || s.attempts > 5 {
		return nil, fmt.Errorf("client: %d retry attempts is outside 1..5", s.attempts)
	}
	t, err := parseTarget(addrs)
	if err != nil {
		return nil, err
	}
	creds, err := transportCredentials(s, t)
	if err != nil {
		return nil, err
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(serviceConfig(s.attempts, t.resolver != nil || t.dns)),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallSendMsgSize(s.maxMsg),
			grpc.MaxCallRecvMsgSize(s.maxMsg),
			// Retries replay the request, so keep requests up to the limit buffered.
			grpc.MaxRetryRPCBufferSize(s.maxMsg),
		),
	}
	if s.attempts > 1 {
		dial = append(dial, grpc.WithChainUnaryInterceptor(retryAfter()))
	}
	if t.resolver != nil {
		dial = append(dial, grpc.WithResolvers(t.resolver))
	}
	if t.dns {
		dial = append(dial, grpc.WithResolvers(pollingDNS{every: s.resolveEvery}))
	}
	conn, err := grpc.NewClient(t.target, append(dial, s.dialOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Client{
		conn: conn, timeout: s.timeout, streamTimeout: s.streamTimeout,
		classify: pb.NewClassifyServiceClient(conn),
		detect:   pb.NewDetectServiceClient(conn),
		generate: pb.NewGenerateServiceClient(conn),
		models:   pb.NewModelServiceClient(conn),
		alerts:   pb.NewAlertServiceClient(conn),
		health:   healthpb.NewHealthClient(conn),
	}, nil
}

// Conn returns the underlying connection, for services this package does not wrap.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection; calls in flight fail with Canceled.
func (c *Client) Close() error { return c.conn.Close() }

// unary gives ctx the client's deadline (or keeps an earlier one).
func (c *Client) unary(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// stream gives ctx the stream deadline, if one is set.
func (c *Client) stream(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.streamTimeout > 0 {
		return context.WithTimeout(ctx, c.streamTimeout)
	}
	return context.WithCancel(ctx)
}

func transportCredentials(s settings, t target) (credentials.TransportCredentials, error) {
	switch {
	case s.tls != nil:
		return credentials.NewTLS(s.tls), nil
	case s.insecure || t.loopback:
		return insecure.NewCredentials(), nil
	}
	return nil, &PlaintextError{Addr: t.nonLoopback}
}

// PlaintextError is New's refusal to send plaintext to an address that is not
// loopback when neither WithTLS nor WithInsecure is given.
type PlaintextError struct {
	Addr string // the first address that is not loopback
}

func (e *PlaintextError) Error() string {
	return "client: " + e.Addr + " is not a loopback address: use WithTLS, or WithInsecure to send plaintext on purpose"
}
