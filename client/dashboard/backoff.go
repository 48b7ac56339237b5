package dashboard

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// backoff is exponential backoff with jitter: first, doubling up to limit.
type backoff struct {
	first, limit, cur time.Duration
	attempt           int
}

func newBackoff(first, limit time.Duration) *backoff {
	return &backoff{first: first, limit: limit}
}

// next returns the wait before the next attempt (within 20% of the nominal value).
func (b *backoff) next() time.Duration {
	b.attempt++
	if b.cur == 0 {
		b.cur = b.first
	} else {
		b.cur = min(2*b.cur, b.limit)
	}
	return time.Duration(float64(b.cur) * (0.8 + 0.4*rand.Float64()))
}

// reset starts over after a success.
func (b *backoff) reset() { b.cur, b.attempt = 0, 0 }

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// describe renders an error for a person: a gRPC status as "CODE: message".
func describe(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "DEADLINE_EXCEEDED: no answer in time"
	}
	if st, ok := status.FromError(err); ok {
		return codeName(st.Code()) + ": " + st.Message()
	}
	return err.Error()
}

// codeName is a code's canonical name (UNAVAILABLE, INVALID_ARGUMENT, ...).
func codeName(c codes.Code) string {
	switch c {
	case codes.OK:
		return "OK"
	case codes.Canceled:
		return "CANCELLED"
	case codes.Unavailable:
		return "UNAVAILABLE"
	}
	// codes.Code.String gives CamelCase ("InvalidArgument"); convert to the canonical form.
	s := c.String()
	out := make([]byte, 0, len(s)+4)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= 'A' && ch <= 'Z' {
			if i > 0 {
				out = append(out, '_')
			}
			out = append(out, ch)
		} else {
			out = append(out, ch-'a'+'A')
		}
	}
	return string(out)
}
