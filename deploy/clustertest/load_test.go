package clustertest

import (
	"context"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"

	"github.com/atelier-vision/atelier/client"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// call is one Classify call as its caller saw it: retries included.
type call struct {
	start, end time.Time
	ip         string // the replica that answered, "" on failure
	attempts   int32  // tries on the wire: more than 1 when retried
	version    int64  // the model version that answered
	err        error
}

// attemptCounter counts Classify attempts on the wire: the first try of every call,
// its retries, and gRPC's transparent retries of streams that never left the client.
// It also notes which server each tagged stream went to (see withStreamID).
type attemptCounter struct {
	attempts, transparent atomic.Int64
	mu                    sync.Mutex
	streamIP              map[int]string
}

type methodKey struct{}

// callKey tags a call's context with the counter of its own attempts.
type callKey struct{}

type streamKey struct{}

// withStreamID tags ctx so that the stats handler records the server of the stream
// started with it.
func withStreamID(ctx context.Context, id int) context.Context {
	return context.WithValue(ctx, streamKey{}, id)
}

func (a *attemptCounter) streamServer(id int) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.streamIP[id]
}

func (a *attemptCounter) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, methodKey{}, info.FullMethodName)
}

func (a *attemptCounter) HandleRPC(ctx context.Context, s stats.RPCStats) {
	switch s := s.(type) {
	case *stats.Begin:
		if s.Client && ctx.Value(methodKey{}) == classifyMethod {
			a.attempts.Add(1)
			if n, ok := ctx.Value(callKey{}).(*atomic.Int32); ok {
				n.Add(1)
			}
			if s.IsTransparentRetryAttempt {
				a.transparent.Add(1)
			}
		}
	case *stats.OutHeader:
		if id, ok := ctx.Value(streamKey{}).(int); ok && s.Client && s.RemoteAddr != nil {
			ip, _, _ := net.SplitHostPort(s.RemoteAddr.String())
			a.mu.Lock()
			a.streamIP[id] = ip
			a.mu.Unlock()
		}
	}
}

func (a *attemptCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (a *attemptCounter) HandleConn(context.Context, stats.ConnStats) {}

// goLoad is the Go client under closed-loop load: workers that call Classify back to
// back, each call recorded.
type goLoad struct {
	c       *client.Client
	img     *pb.Image
	counter *attemptCounter
	mu      sync.Mutex
	calls   []call
}

func newGoLoad(target string, img *pb.Image, opts ...client.Option) (*goLoad, error) {
	counter := &attemptCounter{streamIP: map[int]string{}}
	c, err := client.New(target, append([]client.Option{client.WithInsecure(), client.WithTimeout(20 * time.Second),
		client.WithDialOptions(grpc.WithStatsHandler(counter))}, opts...)...)
	if err != nil {
		return nil, err
	}
	return &goLoad{c: c, img: img, counter: counter}, nil
}

// run keeps workers calling until ctx is done.
func (l *goLoad) run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				l.once()
			}
		})
	}
	wg.Wait()
}

// runFor keeps workers calling for at least d and until at least n calls have ended
// (a busy machine can stall everything for a moment), but no longer than limit. It
// returns the calls.
func (l *goLoad) runFor(workers int, d time.Duration, n int, limit time.Duration) []call {
	from := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.run(ctx, workers) }()
	for time.Since(from) < d || (len(l.since(from)) < n && time.Since(from) < limit) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	return l.since(from)
}

// once makes one call and records it.
func (l *goLoad) once() call {
	var p peer.Peer
	var attempts atomic.Int32
	ctx := context.WithValue(context.Background(), callKey{}, &attempts)
	start := time.Now()
	resp, err := l.c.Classify(ctx, &pb.ClassifyRequest{Images: []*pb.Image{l.img}}, grpc.Peer(&p))
	c := call{start: start, end: time.Now(), err: err, attempts: attempts.Load(), version: resp.GetModel().GetVersion()}
	if err == nil && p.Addr != nil {
		c.ip, _, _ = net.SplitHostPort(p.Addr.String())
	}
	l.mu.Lock()
	l.calls = append(l.calls, c)
	l.mu.Unlock()
	return c
}

// warmUp calls until every one of ips has answered.
func (l *goLoad) warmUp(t *testing.T, ips ...string) {
	t.Helper()
	seen := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for len(seen) < len(ips) {
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s only %v of %v answered", seen, ips)
		}
		c := l.once()
		if c.err != nil {
			t.Fatalf("warm-up call: %v", c.err)
		}
		seen[c.ip] = true
	}
}

// since returns the calls that ended at or after from.
func (l *goLoad) since(from time.Time) []call {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := slices.IndexFunc(l.calls, func(c call) bool { return !c.end.Before(from) })
	if i < 0 {
		return nil
	}
	return slices.Clone(l.calls[i:])
}

// tally counts calls by the replica that answered, and the failures.
func tally(calls []call) (byIP map[string]int, failed []error) {
	byIP = map[string]int{}
	for _, c := range calls {
		if c.err != nil {
			failed = append(failed, c.err)
			continue
		}
		byIP[c.ip]++
	}
	return byIP, failed
}

// longest returns the longest call.
func longest(calls []call) time.Duration {
	var m time.Duration
	for _, c := range calls {
		m = max(m, c.end.Sub(c.start))
	}
	return m
}

// percentile returns the q-th quantile (0..1) of the calls' durations.
func percentile(calls []call, q float64) time.Duration {
	if len(calls) == 0 {
		return 0
	}
	d := make([]time.Duration, len(calls))
	for i, c := range calls {
		d[i] = c.end.Sub(c.start)
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

// retried returns the calls that took more than one attempt.
func retried(calls []call) []call {
	var out []call
	for _, c := range calls {
		if c.attempts > 1 {
			out = append(out, c)
		}
	}
	return out
}
