package server

import (
	"context"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/internal/admission"
	"github.com/atelier-vision/atelier/internal/auth"
	"github.com/atelier-vision/atelier/internal/batching"
	"github.com/atelier-vision/atelier/internal/errkind"
)

// PriorityHeader is the request metadata key that sets a call's priority: high, normal
// (the default) or low. The batcher serves higher priorities first.
const PriorityHeader = "x-atelier-priority"

// RetryAfterHeader is the trailer of a call refused by the rate limit: the seconds to
// wait, as a decimal number. RetryAfterMSHeader says the same in milliseconds.
const (
	RetryAfterHeader   = "retry-after"
	RetryAfterMSHeader = "retry-after-ms"
)

// Security configures the guard interceptors: authentication, roles and admission.
type Security struct {
	// Tokens turns on bearer-token authentication; nil lets every caller in.
	Tokens *auth.Store
	// Rules say which role each method needs; nil means auth.DefaultRules.
	Rules []auth.Rule
	// Admission limits each caller's call rate and open streams; nil limits nothing.
	Admission *admission.Controller
}

// guard checks a call before its handler runs.
type guard struct {
	Security
}

// caller is who a call comes from, as far as the guard knows.
type caller struct {
	key   string // the admission key: "token:NAME" or "peer:HOST"; empty without admission control
	token string // the bearer token the call is admitted with, kept to re-check it on every stream message
	need  auth.Role
}

// admit authenticates the call, applies its priority and takes it through the rate
// limit. It returns the context the handler runs with.
func (g *guard) admit(ctx context.Context, method string) (context.Context, caller, error) {
	// Each look-up reads only its own header: metadata.FromIncomingContext copies
	// them all, on every call.
	c := caller{need: auth.RoleNone}
	if g.Admission != nil {
		c.key = "peer:" + peerHost(ctx) // replaced by the token's name below, if any
	}
	if v := metadata.ValueFromIncomingContext(ctx, PriorityHeader); len(v) > 0 {
		p, err := batching.ParsePriority(v[0])
		if err != nil {
			return ctx, c, toStatus(errkind.Newf(errkind.Invalid, "%s: %v", PriorityHeader, err))
		}
		ctx = batching.WithPriority(ctx, p)
	}
	// Open methods (health, probes) pass without a token or a rate limit.
	if c.need = auth.Required(g.Rules, method); c.need == auth.Public {
		return ctx, c, nil
	}
	if g.Tokens == nil && adminMethods[method] {
		return ctx, c, toStatus(errkind.New(errkind.Unimplemented,
			"admin RPCs are off on this server; start atelierd with --auth-tokens-file holding an admin token to turn them on"))
	}
	if g.Tokens != nil {
		tokens, err := bearers(metadata.ValueFromIncomingContext(ctx, "authorization"))
		if err != nil {
			return ctx, c, toStatus(err)
		}
		c.token = g.strongest(tokens)
		id, err := g.check(c, method)
		// A known token refused for its role is named too: the access log then says
		// which client tried an RPC beyond its role.
		noteCaller(ctx, id.Fingerprint)
		if err != nil {
			return ctx, c, toStatus(err)
		}
		c.key = "token:" + id.Name
	}
	if ok, wait := g.Admission.Allow(c.key); !ok {
		secs := strconv.FormatInt(int64(math.Ceil(wait.Seconds())), 10)
		grpc.SetTrailer(ctx, metadata.Pairs(RetryAfterHeader, secs, RetryAfterMSHeader, strconv.FormatInt(wait.Milliseconds()+1, 10)))
		return ctx, c, toStatus(errkind.Newf(errkind.Overloaded, "rate limit of %g calls/s (burst %d) exceeded; retry after %v",
			g.Admission.Config().Rate, g.Admission.Config().Burst, wait.Round(time.Millisecond)))
	}
	return ctx, c, nil
}

// check looks the caller's token up and compares its role with the one needed.
func (g *guard) check(c caller, method string) (auth.Identity, error) {
	if c.token == "" {
		return auth.Identity{}, errkind.New(errkind.Unauthenticated, `missing token: send "authorization: Bearer <token>"`)
	}
	id, ok := g.Tokens.Lookup(c.token)
	if !ok {
		return id, errkind.New(errkind.Unauthenticated, "unknown or revoked token")
	}
	if id.Role < c.need {
		return id, errkind.Newf(errkind.PermissionDenied, "role %s may not call %s (it needs %s)", id.Role, clipText(method, 128), c.need)
	}
	return id, nil
}

func (g *guard) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		ctx, _, err := g.admit(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (g *guard) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
		ctx, c, err := g.admit(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		release, ok := g.Admission.OpenStream(c.key)
		if !ok {
			return toStatus(errkind.Newf(errkind.Overloaded, "this caller already has %d streams open, the limit", g.Admission.Config().MaxStreams))
		}
		defer release()
		return next(srv, &guardedStream{ServerStream: ss, ctx: ctx, g: g, c: c, method: info.FullMethod})
	}
}

// guardedStream re-checks the caller's token on every message, so a token removed
// from the file ends its streams at their next frame.
type guardedStream struct {
	grpc.ServerStream
	ctx    context.Context
	g      *guard
	c      caller
	method string
}

func (s *guardedStream) Context() context.Context { return s.ctx }

func (s *guardedStream) recheck() error {
	if s.g.Tokens == nil || s.c.need == auth.Public {
		return nil
	}
	_, err := s.g.check(s.c, s.method)
	return toStatus(err)
}

func (s *guardedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return undecodable(err)
	}
	return s.recheck()
}

// undecodable gives a message gRPC-Go could not decode (not protobuf, a string field
// that is not UTF-8) the code it deserves in the server's accounts: the caller's
// INVALID_ARGUMENT, not the INTERNAL gRPC-Go reports, which the access log would write
// as a server fault, one ERROR line per call at the rate a client cares to send them.
// (The client has already been sent gRPC-Go's INTERNAL by then: its RecvMsg writes
// the status itself.) gRPC-Go says so only in its message, which
// TestUndecodableStreamMessage pins.
func undecodable(err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Internal {
		return err
	}
	if why, ok := strings.CutPrefix(st.Message(), "grpc: failed to unmarshal the received message"); ok {
		return toStatus(errkind.New(errkind.Invalid, "the message could not be decoded as the method's request"+why))
	}
	return err
}

func (s *guardedStream) SendMsg(m any) error {
	if err := s.recheck(); err != nil {
		return err
	}
	return s.ServerStream.SendMsg(m)
}

// maxAuthValues bounds the authorization headers of one call.
const maxAuthValues = 4

// bearers returns the tokens of a call's "authorization: Bearer <token>" headers,
// given the headers' values; the scheme's case does not matter (RFC 9110). A value of
// any other form is refused rather than skipped, and the error never echoes it: it
// may be a token.
func bearers(values []string) ([]string, error) {
	if len(values) > maxAuthValues {
		return nil, errkind.Newf(errkind.Unauthenticated, "%d authorization headers, more than %d", len(values), maxAuthValues)
	}
	tokens := make([]string, 0, len(values))
	for _, v := range values {
		tok := ""
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			tok = strings.TrimSpace(v[7:])
		}
		if tok == "" {
			return nil, errkind.New(errkind.Unauthenticated, `an authorization header is not "Bearer <token>"`)
		}
		tokens = append(tokens, tok)
	}
	return tokens, nil
}

// strongest returns the known token of the highest role among tokens, or the first
// one when none is known ("" when there are none). A call may carry two: a client's
// own token and an admin token added for one call (the Go CLI sends the first from
// --token and the second from --admin-token-file; the Python client the other way
// round). The call gets the role it was given, whatever the order of the headers.
func (g *guard) strongest(tokens []string) string {
	best, role := "", auth.RoleNone
	for _, tok := range tokens {
		if id, ok := g.Tokens.Lookup(tok); ok && id.Role > role {
			best, role = tok, id.Role
		}
	}
	if best == "" && len(tokens) > 0 {
		return tokens[0]
	}
	return best
}

// peerHost is the caller's address without its port, as admission.CallerKey names
// one caller: an IPv4 address, or an IPv6 address's /64.
func peerHost(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return "unknown"
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return p.Addr.String()
	}
	return admission.CallerKey(host)
}

// callNote carries what the guard learnt about a call back to the logging interceptor.
type callNote struct{ fingerprint string }

type noteKey struct{}

func withNote(ctx context.Context) (context.Context, *callNote) {
	n := &callNote{}
	return context.WithValue(ctx, noteKey{}, n), n
}

func noteCaller(ctx context.Context, fingerprint string) {
	if n, ok := ctx.Value(noteKey{}).(*callNote); ok {
		n.fingerprint = fingerprint
	}
}
