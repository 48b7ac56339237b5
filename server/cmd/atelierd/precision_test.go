package main

import (
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
// report passes its gate, so auto must run bf16: the answers differ slightly, and
// over the 10,000 test images bf16 stays within the gate (accuracy within 0.3 points,
// top-1 agreement at least 99.5%). On a CPU without native bf16, auto must fall back
// to fp32: the answers are identical.
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
	for _, c := range []struct {
		conn *grpc.ClientConn
		want precision.Precision
	}{{fp32, precision.FP32}, {auto, want}} {
		info, err := pb.NewModelServiceClient(c.conn).GetModel(ctxFor(t, time.Minute),
			&pb.GetModelRequest{Model: &pb.ModelSpec{Name: "classifier"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := info.GetModel().GetVersions()[0].GetPrecision(); got != string(c.want) {
			t.Fatalf("ModelService reports precision %q, want %q", got, c.want)
		}
	}

	// One image, all ten probabilities: identical in fp32, slightly different in bf16.
	set := testSet(t)
	req := &pb.ClassifyRequest{TopK: proto.Int32(10), Images: []*pb.Image{encoded(greyPNG(t, set.Images[0]))}}
	a, err := pb.NewClassifyServiceClient(fp32).Classify(ctxFor(t, time.Minute), req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := pb.NewClassifyServiceClient(auto).Classify(ctxFor(t, time.Minute), req)
	if err != nil {
		t.Fatal(err)
	}
	same := true
	sa, sb := scores(a.Classifications[0]), scores(b.Classifications[0])
	for k, v := range sa {
		same = same && sb[k] == v
	}
	switch {
	case want == precision.FP32 && !same:
		t.Fatalf("auto chose fp32 (%s) but its answers differ from fp32's: %v vs %v", why, sb, sa)
	case want == precision.FP32:
		t.Log("no native bf16 here: auto fell back to fp32, answers identical")
		return
	case same:
		t.Fatalf("auto should run bf16 (%s) but its answers equal fp32's exactly: the rewrite did not run", why)
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
