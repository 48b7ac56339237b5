package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/atelier-vision/atelier/internal/admission"
	"github.com/atelier-vision/atelier/internal/auth"
	"github.com/atelier-vision/atelier/internal/certs"
	"github.com/atelier-vision/atelier/internal/connlimit"
	"github.com/atelier-vision/atelier/internal/filewatch"
	"github.com/atelier-vision/atelier/server"
)

// securityConfig is the TLS, token and admission part of the configuration
// (docs/SECURITY.md).
type securityConfig struct {
	TLS                  certs.Files
	MetricsPublic        bool
	TokensFile           string
	Reflection           string
	Admission            admission.Config
	KeepaliveMinTime     time.Duration
	MaxConcurrentStreams uint
	MaxConnectionAge     time.Duration
	MaxConnectionGrace   time.Duration
	MaxConnectionIdle    time.Duration
	Connections          connlimit.Config
	HandshakeTimeout     time.Duration
	MaxHeaderBytes       int
	ReloadInterval       time.Duration
}

func (s *securityConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&s.TLS.Cert, "tls-cert", "", "PEM certificate chain: serve gRPC and metrics over TLS (1.2 or later); re-read on change or SIGHUP")
	fs.StringVar(&s.TLS.Key, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&s.TLS.ClientCA, "tls-client-ca", "", "PEM CA certificates: require client certificates signed by them (mTLS)")
	fs.BoolVar(&s.MetricsPublic, "metrics-public", false, "serve plaintext metrics on every interface (without TLS, a wildcard --metrics-listen binds to loopback)")
	fs.StringVar(&s.TokensFile, "auth-tokens-file", "", "file of 'TOKEN ROLE [NAME]' lines (roles: infer, admin): require bearer tokens; re-read on change or SIGHUP")
	fs.StringVar(&s.Reflection, "reflection", "open", "server reflection: open (no token), token (an infer token) or off")
	fs.Float64Var(&s.Admission.Rate, "rate-limit", 0, "calls per second each token (or, without tokens, each client address) may start (0: no limit)")
	fs.IntVar(&s.Admission.Burst, "rate-burst", 0, "calls a caller may start at once (0: the rate, at least 1)")
	fs.IntVar(&s.Admission.MaxStreams, "max-streams-per-caller", 64, "streams one token (or client address) may hold open (0: no limit)")
	fs.DurationVar(&s.KeepaliveMinTime, "keepalive-min-time", 10*time.Second, "shortest keepalive ping interval a client may use; faster pings close the connection")
	fs.UintVar(&s.MaxConcurrentStreams, "max-concurrent-streams", 1000, "calls and streams at once on one connection")
	fs.DurationVar(&s.MaxConnectionAge, "max-connection-age", 0, "ask clients to reconnect after this long, so they rebalance across replicas (0: never)")
	fs.DurationVar(&s.MaxConnectionGrace, "max-connection-age-grace", 5*time.Minute, "how long calls on an aged connection may go on before it is closed")
	fs.DurationVar(&s.MaxConnectionIdle, "max-connection-idle", 0, "close a connection that has had no call for this long (0: never)")
	fs.IntVar(&s.Connections.Max, "max-connections", 4096, "client connections open at once on the gRPC port; one more is closed as it comes (0: no limit)")
	fs.IntVar(&s.Connections.PerCaller, "max-connections-per-caller", 256, "connections open at once from one client address (IPv4 address or IPv6 /64); one more is closed as it comes (0: no limit)")
	// gRPC-Go gives a new connection 120 s to finish its TLS handshake and send the
	// HTTP/2 preface: a host that opens connections and says nothing holds each that long.
	fs.DurationVar(&s.HandshakeTimeout, "handshake-timeout", 10*time.Second, "time a new connection has for its TLS handshake and HTTP/2 preface before it is closed")
	// gRPC-Go would take 16 MiB of headers per call, held while the call lasts and
	// decoded before any token is checked: 64 streams of a caller, or an open health
	// Watch per stream, could pin a gigabyte. gRPC's C core refuses more than 16 KiB.
	fs.IntVar(&s.MaxHeaderBytes, "max-header-bytes", 64<<10, "largest total size of one call's metadata (headers); a bigger call is refused")
	fs.DurationVar(&s.ReloadInterval, "reload-interval", filewatch.DefaultInterval, "how often the TLS and token files are checked for changes")
}

func (s securityConfig) validate() error {
	if (s.TLS.Cert == "") != (s.TLS.Key == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if s.TLS.ClientCA != "" && s.TLS.Cert == "" {
		return fmt.Errorf("--tls-client-ca needs --tls-cert and --tls-key")
	}
	switch s.Reflection {
	case "open", "token", "off":
	default:
		return fmt.Errorf("--reflection must be open, token or off, not %q", s.Reflection)
	}
	if s.MaxHeaderBytes < 4<<10 || s.MaxHeaderBytes > 16<<20 {
		return fmt.Errorf("--max-header-bytes %d is outside 4096..16777216", s.MaxHeaderBytes)
	}
	if s.ReloadInterval <= 0 || s.KeepaliveMinTime < 0 || s.MaxConnectionAge < 0 || s.MaxConnectionGrace < 0 || s.MaxConnectionIdle < 0 {
		return fmt.Errorf("--reload-interval must be positive and the keepalive and connection-age and -idle durations not negative")
	}
	if s.HandshakeTimeout <= 0 {
		return fmt.Errorf("--handshake-timeout must be positive, not %v", s.HandshakeTimeout)
	}
	if err := s.Connections.Validate(); err != nil {
		return err
	}
	return s.Admission.Validate()
}

func (s securityConfig) logAttrs() []any {
	return []any{"tls_cert", s.TLS.Cert, "tls_client_ca", s.TLS.ClientCA, "metrics_public", s.MetricsPublic,
		"auth_tokens_file", s.TokensFile, "reflection", s.Reflection, "rate_limit", s.Admission.Rate,
		"rate_burst", s.Admission.Burst, "max_streams_per_caller", s.Admission.MaxStreams,
		"keepalive_min_time", s.KeepaliveMinTime, "max_concurrent_streams", s.MaxConcurrentStreams,
		"max_connection_age", s.MaxConnectionAge, "max_connection_age_grace", s.MaxConnectionGrace,
		"max_connection_idle", s.MaxConnectionIdle, "max_connections", s.Connections.Max,
		"max_connections_per_caller", s.Connections.PerCaller, "handshake_timeout", s.HandshakeTimeout,
		"max_header_bytes", s.MaxHeaderBytes, "reload_interval", s.ReloadInterval}
}

// security is the configuration made live: the reloading TLS files and token file,
// the admission controller and the gRPC server options.
type security struct {
	cfg      securityConfig
	certs    *certs.Reloader // nil without TLS
	server   server.Security
	grpc     []grpc.ServerOption
	watchers []*filewatch.Watcher
}

func newSecurity(cfg securityConfig, log *slog.Logger) (*security, error) {
	s := &security{cfg: cfg}
	if cfg.TLS.Cert != "" {
		r, err := certs.New(cfg.TLS, log)
		if err != nil {
			return nil, err
		}
		s.certs = r
		s.grpc = append(s.grpc, grpc.Creds(credentials.NewTLS(r.Config("h2"))))
		s.watchers = append(s.watchers, filewatch.New(cfg.ReloadInterval, func() { r.Reload() }, cfg.TLS.Paths()...))
	}
	if cfg.TokensFile != "" {
		st, err := auth.Open(cfg.TokensFile, log)
		if err != nil {
			return nil, err
		}
		s.server.Tokens = st
		s.server.Rules = append([]auth.Rule{}, auth.DefaultRules...)
		switch cfg.Reflection {
		case "open":
			s.server.Rules = append(s.server.Rules, auth.ReflectionRules...)
		case "token":
			s.server.Rules = append(s.server.Rules, auth.InferReflectionRules...)
		}
		s.watchers = append(s.watchers, filewatch.New(cfg.ReloadInterval, func() { st.Reload() }, cfg.TokensFile))
	}
	if cfg.Admission != (admission.Config{}) {
		s.server.Admission = admission.New(cfg.Admission)
	}
	s.grpc = append(s.grpc,
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: cfg.KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.MaxConcurrentStreams(uint32(min(cfg.MaxConcurrentStreams, 1<<31))),
	)
	if cfg.MaxHeaderBytes > 0 {
		s.grpc = append(s.grpc, grpc.MaxHeaderListSize(uint32(cfg.MaxHeaderBytes)))
	}
	if cfg.HandshakeTimeout > 0 { // zero (a config not from flags): gRPC-Go's 120 s
		s.grpc = append(s.grpc, grpc.ConnectionTimeout(cfg.HandshakeTimeout))
	}
	if cfg.MaxConnectionAge > 0 || cfg.MaxConnectionIdle > 0 {
		// gRPC-Go reads zero as its own default: infinite for all three.
		s.grpc = append(s.grpc, grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionAge: cfg.MaxConnectionAge, MaxConnectionAgeGrace: cfg.MaxConnectionGrace,
			MaxConnectionIdle: cfg.MaxConnectionIdle,
		}))
	}
	return s, nil
}

// watch re-reads the files when they change, until ctx is done.
func (s *security) watch(ctx context.Context) {
	for _, w := range s.watchers {
		go w.Run(ctx)
	}
}

// reload re-reads every file now (SIGHUP).
func (s *security) reload() {
	for _, w := range s.watchers {
		w.Trigger()
	}
}

// metricsListener listens for the metrics and profiler port: over TLS when gRPC has
// it; in plaintext on loopback when the address is a wildcard, unless --metrics-public.
func (s *security) metricsListener(addr string, log *slog.Logger) (net.Listener, error) {
	if s.certs == nil && !s.cfg.MetricsPublic {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			addr = net.JoinHostPort("127.0.0.1", port)
			log.Info("metrics without TLS: bound to loopback (--metrics-public to serve every interface)", "address", addr)
		}
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if s.certs == nil {
		// A host name that resolves to the wildcard binds every interface too.
		if ta, ok := lis.Addr().(*net.TCPAddr); ok && ta.IP.IsUnspecified() && !s.cfg.MetricsPublic {
			lis.Close()
			return s.metricsListener(net.JoinHostPort("", strconv.Itoa(ta.Port)), log)
		}
		return lis, nil
	}
	return tls.NewListener(lis, s.certs.Config("http/1.1")), nil
}
