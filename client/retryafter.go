package client

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The trailers of a call the server's rate limit refused: how long to wait, in
// milliseconds or in (possibly fractional) seconds.
const (
	retryAfterMSTrailer = "retry-after-ms"
	retryAfterTrailer   = "retry-after"
)

// minRetryAfter keeps a server that asks for no wait from being called in a loop.
const minRetryAfter = 10 * time.Millisecond

// retryAfter is a unary interceptor: a call refused with RESOURCE_EXHAUSTED and a
// retry-after trailer (the server's rate limit, which refuses a call before it runs)
// is tried again once the wait the server asked for is over, for as long as the
// call's deadline allows: the deadline, not a count, bounds the tries, because callers
// that share a rate take turns and one may be refused many times before its turn. A
// RESOURCE_EXHAUSTED without the trailer (a full queue, a message over the size
// limit) is final.
func retryAfter() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		for {
			var trailer metadata.MD
			err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Trailer(&trailer))...)
			wait, ok := retryAfterOf(trailer)
			if status.Code(err) != codes.ResourceExhausted || !ok {
				return err
			}
			// Up to 20% more, so that callers refused together do not return together.
			wait += time.Duration(rand.Int64N(int64(wait)/5 + 1))
			if dl, has := ctx.Deadline(); has && time.Until(dl) < wait {
				return err
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return err
			case <-t.C:
			}
		}
	}
}

// retryAfterOf reads the wait a refused call's trailer asks for. A wait of a million
// seconds (11.5 days) or more is ignored like a malformed one, in either trailer, so
// that without a usable trailer the refusal is final. (Without that bound on
// retry-after-ms, a wait past 292 years overflowed into a negative one, which became
// minRetryAfter: a call made again every 10 ms until its deadline.)
func retryAfterOf(md metadata.MD) (time.Duration, bool) {
	if v := md.Get(retryAfterMSTrailer); len(v) > 0 {
		if ms, err := strconv.ParseInt(v[0], 10, 64); err == nil && ms >= 0 && ms < 1e9 {
			return max(time.Duration(ms)*time.Millisecond, minRetryAfter), true
		}
	}
	if v := md.Get(retryAfterTrailer); len(v) > 0 {
		if s, err := strconv.ParseFloat(v[0], 64); err == nil && s >= 0 && s < 1e6 {
			return max(time.Duration(s*float64(time.Second)), minRetryAfter), true
		}
	}
	return 0, false
}
