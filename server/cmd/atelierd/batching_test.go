package main

import (
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// TestBatchedEqualsUnbatched sends 96 single-image requests at once to a batching
// server and compares every answer with the same image served alone by a server with
// batching off: each caller gets its own answer, equal to 1e-5.
func TestBatchedEqualsUnbatched(t *testing.T) {
	set := testSet(t)
	_, alone := startApp(t, func(c *config) { c.Batching.MaxBatch = 1 })
	_, batched := startApp(t, func(c *config) { c.Batching.MaxDelay = 20 * time.Millisecond })
	const n = 96
	want := make([]*pb.Classification, n)
	for i := range n {
		resp, err := pb.NewClassifyServiceClient(alone).Classify(ctxFor(t, time.Minute),
			&pb.ClassifyRequest{TopK: proto.Int32(10), Images: []*pb.Image{encoded(greyPNG(t, set.Images[i]))}})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = resp.Classifications[0]
	}
	got := make([]*pb.Classification, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := pb.NewClassifyServiceClient(batched).Classify(ctxFor(t, time.Minute),
				&pb.ClassifyRequest{TopK: proto.Int32(10), Images: []*pb.Image{encoded(greyPNG(t, set.Images[i]))}})
			if err != nil {
				errs[i] = err
				return
			}
			got[i] = resp.Classifications[0]
		}()
	}
	wg.Wait()
	worst := 0.0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		w, g := scores(want[i]), scores(got[i])
		for k, v := range w {
			worst = math.Max(worst, math.Abs(float64(g[k]-v)))
		}
	}
	t.Logf("max |batched - alone| over %d concurrent requests: %.3g", n, worst)
	if worst > 1e-5 {
		t.Fatalf("batched answers differ from unbatched by %g, want <= 1e-5", worst)
	}
}

// TestQueueFullIsResourceExhausted floods a server whose queue holds one request.
func TestQueueFullIsResourceExhausted(t *testing.T) {
	set := testSet(t)
	_, conn := startApp(t, func(c *config) { c.Batching.QueueSize = 1; c.Batching.MaxBatch = 64 })
	req := &pb.ClassifyRequest{}
	for i := range 64 {
		req.Images = append(req.Images, encoded(greyPNG(t, set.Images[i])))
	}
	var mu sync.Mutex
	counts := map[codes.Code]int{}
	var wg sync.WaitGroup
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := pb.NewClassifyServiceClient(conn).Classify(ctxFor(t, time.Minute), req)
			mu.Lock()
			counts[status.Code(err)]++
			mu.Unlock()
			if status.Code(err) == codes.ResourceExhausted && !containsAll(status.Convert(err).Message(), "queue is full", "retry") {
				t.Errorf("message %q does not say the queue is full", status.Convert(err).Message())
			}
		}()
	}
	wg.Wait()
	t.Logf("codes: %v", counts)
	if counts[codes.ResourceExhausted] == 0 || counts[codes.OK] == 0 || counts[codes.OK]+counts[codes.ResourceExhausted] != 24 {
		t.Fatalf("got %v, want some OK and some ResourceExhausted, nothing else", counts)
	}
}

// TestExpiredDeadline checks that a request whose deadline has passed gets
// DeadlineExceeded.
func TestExpiredDeadline(t *testing.T) {
	_, conn := startApp(t)
	_, err := pb.NewClassifyServiceClient(conn).Classify(ctxFor(t, time.Nanosecond),
		&pb.ClassifyRequest{Images: []*pb.Image{encoded(greyPNG(t, testSet(t).Images[0]))}})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
