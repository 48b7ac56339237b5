package client_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/client"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// TestRoundRobinStubs spreads calls over three in-memory servers, then stops one of
// them abruptly while calls are in flight: retries must hide it from every caller.
func TestRoundRobinStubs(t *testing.T) {
	addrs := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}
	n := serveStubs(t, nil, addrs...)
	answered := map[string]*atomic.Int64{}
	for _, a := range addrs {
		answered[a] = &atomic.Int64{}
		count := answered[a]
		n.stubs[a].listModels = func(ctx context.Context, _ *pb.ListModelsRequest) (*pb.ListModelsResponse, error) {
			time.Sleep(time.Millisecond)
			count.Add(1)
			return &pb.ListModelsResponse{}, nil
		}
	}
	c := newClient(t, n, strings.Join(addrs, ","))
	ctx := context.Background()
	for i := 0; i < 100 && !(answered[addrs[0]].Load() > 0 && answered[addrs[1]].Load() > 0 && answered[addrs[2]].Load() > 0); i++ {
		if _, err := c.ListModels(ctx); err != nil {
			t.Fatal(err)
		}
	}
	before := map[string]int64{}
	for _, a := range addrs {
		before[a] = answered[a].Load()
	}
	const sequential = 90
	for range sequential {
		if _, err := c.ListModels(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range addrs {
		if got := answered[a].Load() - before[a]; got < sequential/3-3 || got > sequential/3+3 {
			t.Errorf("%s answered %d of %d sequential calls, want %d±3", a, got, sequential, sequential/3)
		}
	}

	const workers, perWorker, stopAfter = 4, 75, 100
	var done, failed atomic.Int64
	stopped := make(chan struct{})
	var atStop int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				if _, err := c.ListModels(ctx); err != nil {
					failed.Add(1)
					t.Errorf("call failed: %v", err)
				}
				if done.Add(1) == stopAfter {
					n.srv[addrs[1]].Stop() // closes its connections mid-call
					atStop = answered[addrs[1]].Load()
					close(stopped)
				}
			}
		})
	}
	wg.Wait()
	<-stopped
	if failed.Load() != 0 || done.Load() != workers*perWorker {
		t.Fatalf("%d of %d calls failed after a server stopped, want 0", failed.Load(), done.Load())
	}
	if got := answered[addrs[1]].Load(); got > atStop+workers {
		t.Errorf("the stopped server answered %d calls after it stopped", got-atStop)
	}
	t.Logf("answered per server: %d, %d, %d", answered[addrs[0]].Load(), answered[addrs[1]].Load(), answered[addrs[2]].Load())
}

// TestRoundRobinAllDown: with every server gone, a call fails with UNAVAILABLE
// within its deadline instead of hanging.
func TestRoundRobinAllDown(t *testing.T) {
	n := serveStubs(t, nil)
	c := newClient(t, n, "127.0.0.1:1,127.0.0.1:2", client.WithTimeout(2*time.Second))
	start := time.Now()
	_, err := c.ListModels(context.Background())
	if code := status.Code(err); (code != codes.Unavailable && code != codes.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Fatalf("got %v after %v, want Unavailable or DeadlineExceeded within the 2s deadline", err, time.Since(start))
	}
}

// TestRoundRobinSkipsNotServing: a server whose grpc.health.v1 status is NOT_SERVING
// (starting, or draining before it stops) gets no calls, and gets its share again
// once it is SERVING.
func TestRoundRobinSkipsNotServing(t *testing.T) {
	addrs := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}
	n := serveStubs(t, nil, addrs...)
	for _, a := range addrs {
		n.stubs[a].listModels = func(context.Context, *pb.ListModelsRequest) (*pb.ListModelsResponse, error) {
			return &pb.ListModelsResponse{}, nil
		}
	}
	draining := n.stubs[addrs[1]]
	draining.notServing.Store(true)
	c := newClient(t, n, strings.Join(addrs, ","))
	ctx := context.Background()
	calls := func(k int) map[string]int64 {
		before := map[string]int64{}
		for _, a := range addrs {
			before[a] = n.stubs[a].calls.Load()
		}
		for range k {
			if _, err := c.ListModels(ctx); err != nil {
				t.Fatal(err)
			}
		}
		got := map[string]int64{}
		for _, a := range addrs {
			got[a] = n.stubs[a].calls.Load() - before[a]
		}
		return got
	}
	connected := func(a string) bool { return n.stubs[a].calls.Load() > 0 }
	for deadline := time.Now().Add(5 * time.Second); !(connected(addrs[0]) && connected(addrs[2])) && time.Now().Before(deadline); {
		calls(3) // until the serving servers are connected
	}
	// A picker rebuilt mid-run (the draining server's state settling) may shift one call.
	if got := calls(60); got[addrs[1]] != 0 || got[addrs[0]] < 28 || got[addrs[2]] < 28 {
		t.Errorf("with %s NOT_SERVING, calls went %v; want 30±2 on each of the others, none on it", addrs[1], got)
	}
	draining.notServing.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for n.stubs[addrs[1]].calls.Load() == 0 && time.Now().Before(deadline) {
		calls(3)
	}
	if got := calls(60); got[addrs[1]] < 15 {
		t.Errorf("once %s is SERVING again, calls went %v; want its share", addrs[1], got)
	}
}
