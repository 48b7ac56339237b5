package main

import (
	"fmt"
	"maps"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/atelier-vision/atelier/internal/precision"
	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// TestPrecisionAuto serves the embedded classifier at the default precision, auto,
// beside a server pinned to fp32. On a CPU with native bf16 the classifier's build
// report passes its gate, so auto runs bf16, timed at load against fp32 per batch size
// (precision.Calibrate): from the batch size ModelService reports the answers differ
// slightly from fp32's, below it they are fp32's exactly, and over the 10,000 test
// images bf16 stays within the gate (accuracy within 0.3 points, top-1 agreement at
// least 99.5%). On a CPU without native bf16, auto must fall back to fp32: the answers
// are identical.
func TestPrecisionAuto(t *testing.T) {
	dir := filepath.Join(testenv.ModelDir(t, "classifier"), "classifier", "1")
	gate, err := precision.ReadGate(dir)
	if err != nil {
		t.Fatalf("the shipped classifier has no bf16 gate: %v", err)
	}
	host := precision.HostCPU()
	want, why := precision.Choose(precision.Auto, host, gate, nil)
	t.Logf("CPU: %s; auto should choose %s (%s)", host, want, why)

	_, fp32 := startApp(t)
	_, auto := startApp(t, func(c *config) { c.Precision = precision.Auto })

	// ModelService says what each version runs in.
	version := func(conn *grpc.ClientConn) *pb.ModelVersion {
		info, err := pb.NewModelServiceClient(conn).GetModel(ctxFor(t, time.Minute),
			&pb.GetModelRequest{Model: &pb.ModelSpec{Name: "classifier"}})
		if err != nil {
			t.Fatal(err)
		}
		return info.GetModel().GetVersions()[0]
	}
	if got := version(fp32).GetPrecision(); got != string(precision.FP32) {
		t.Fatalf("the fp32 server reports precision %q", got)
	}
	v := version(auto)
	got, minBatch := precision.Precision(v.GetPrecision()), max(int(v.GetBf16MinBatch()), 1)
	t.Logf("auto runs %s from batch %d", got, minBatch)
	switch {
	case want == precision.FP32 && got != precision.FP32:
		t.Fatalf("auto chose %s on a CPU without native bf16", got)
	case want == precision.FP32:
		// The fallback: fp32 throughout, checked against the fp32 server below.
	case got == precision.FP32 && want == precision.BF16:
		// Calibration found bf16 slower at every batch size here: fp32 throughout.
		minBatch = 0
	case got != precision.BF16:
		t.Fatalf("ModelService reports precision %q, want %q", got, want)
	}

	// Batches of 1 and of minBatch images, all ten probabilities: fp32's exactly in
	// fp32, slightly different in bf16.
	set := testSet(t)
	classify := func(conn *grpc.ClientConn, n int) map[string]float32 {
		req := &pb.ClassifyRequest{TopK: proto.Int32(10)}
		for i := range n {
			req.Images = append(req.Images, encoded(greyPNG(t, set.Images[i])))
		}
		resp, err := pb.NewClassifyServiceClient(conn).Classify(ctxFor(t, time.Minute), req)
		if err != nil {
			t.Fatal(err)
		}
		all := map[string]float32{}
		for i, c := range resp.Classifications {
			for k, v := range scores(c) {
				all[fmt.Sprint(i, k)] = v
			}
		}
		return all
	}
	same := func(n int) bool { return maps.Equal(classify(fp32, n), classify(auto, n)) }
	switch {
	case want == precision.FP32 && !same(1):
		t.Fatalf("auto chose fp32 (%s) but its answers differ from fp32's", why)
	case want == precision.FP32:
		t.Log("no native bf16 here: auto fell back to fp32, answers identical")
		return
	case minBatch == 0 && !same(1):
		t.Fatal("calibration chose fp32 throughout but the answers differ from fp32's")
	case minBatch == 0:
		t.Log("bf16 was slower than fp32 at every batch size here: fp32 throughout")
		return
	case minBatch > 1 && !same(1):
		t.Fatalf("one image is below bf16's batch size %d, so it should run in fp32, but its answers differ", minBatch)
	case same(minBatch):
		t.Fatalf("a batch of %d should run in bf16 (%s) but its answers equal fp32's exactly: the rewrite did not run", minBatch, why)
	}

	best32, best16 := topOne(t, fp32, set), topOne(t, auto, set)
	agree := 0
	for i := range best32 {
		if best32[i] == best16[i] {
			agree++
		}
	}
	acc32, acc16 := accuracy(best32, set), accuracy(best16, set)
	agreement := float64(agree) / float64(len(best32))
	t.Logf("through gRPC on %d test images: accuracy %.4f bf16, %.4f fp32; top-1 agreement %.4f", len(best32), acc16, acc32, agreement)
	if acc16 < acc32-0.003 || agreement < 0.995 {
		t.Fatalf("bf16 misses the gate: accuracy %.4f vs %.4f fp32, agreement %.4f", acc16, acc32, agreement)
	}
}
