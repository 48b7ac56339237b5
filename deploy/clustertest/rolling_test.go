package clustertest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// rollModel publishes version 2 of the classifier to one replica at a time, as a
// rolling update of a model volume would (rename into place, then SIGHUP for an
// immediate rescan), while the Go and Python clients run closed-loop load. Each
// replica loads and warms version 2, switches to it and unloads version 1; no call
// may fail, and once the roll is over every call is answered by version 2.
func rollModel(t *testing.T, c *cluster, l *goLoad) {
	const pySeconds = 10 // about the roll's length on two busy cores
	py := c.pythonLoad(c.target, pySeconds, 2)
	from := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.run(ctx, 4) }()
	time.Sleep(time.Second)

	var took []time.Duration
	for _, ip := range ips {
		start := time.Now()
		staging := filepath.Join(c.modelDirs[ip], "classifier", ".staging-2")
		if err := os.Symlink(c.classifierV1, staging); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(staging, filepath.Join(c.modelDirs[ip], "classifier", "2")); err != nil {
			t.Fatal(err)
		}
		c.replicas[ip].cmd.Process.Signal(syscall.SIGHUP)
		waitVersions(t, c.replicas[ip].addr, []int64{2}, 60*time.Second)
		took = append(took, time.Since(start))
	}
	time.Sleep(time.Second) // calls after the roll
	rolled := time.Now()
	time.Sleep(time.Second)
	cancel()
	<-done
	r := py()
	if len(r.Failures) > 0 {
		t.Errorf("Python client: %d of %d calls failed during the roll, want 0; first: %v", len(r.Failures), r.Calls, r.Failures[0])
	}
	calls := l.since(from)
	byIP, failed := tally(calls)
	if len(failed) > 0 {
		t.Errorf("Go client: %d of %d calls failed during the roll, want 0; first: %v", len(failed), len(calls), failed[0])
	}
	byVersion := map[int64]int{}
	for _, cl := range calls {
		byVersion[cl.version]++
		if cl.err == nil && cl.start.After(rolled) && cl.version != 2 {
			t.Errorf("a call after the roll was answered by version %d of %s", cl.version, cl.ip)
		}
	}
	t.Logf("measured: rolling classifier version 1 -> 2, one replica at a time (load, warm-up, switch, unload of 1 took %v): "+
		"Go %d calls, %d failed, by version %v, by replica %v; Python %d calls in its first %d s, %d failed",
		roundAll(took), len(calls), len(failed), byVersion, byIP, r.Calls, pySeconds, len(r.Failures))
}

// waitVersions waits until the replica at addr serves exactly the classifier versions want.
func waitVersions(t *testing.T, addr string, want []int64, limit time.Duration) {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m := pb.NewModelServiceClient(conn)
	var got []int64
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := m.GetModel(ctx, &pb.GetModelRequest{Model: &pb.ModelSpec{Name: "classifier"}})
		cancel()
		if err != nil {
			continue
		}
		got = got[:0]
		for _, v := range resp.GetModel().GetVersions() {
			got = append(got, v.GetVersion())
		}
		if slices.Equal(got, want) {
			return
		}
	}
	t.Fatalf("%s serves classifier versions %v after %v, want %v", addr, got, limit, want)
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}
