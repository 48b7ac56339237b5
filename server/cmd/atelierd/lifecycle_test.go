package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

// These integration tests run the model lifecycle on real TensorFlow with the built
// generator (the smallest embedded model), copied into a repository of their own.

const adminToken = "lifecycle-test-token"

// lifecycleRepo makes a model folder holding copies of the built generator under the
// given name/version paths.
func lifecycleRepo(t *testing.T, versions ...string) string {
	t.Helper()
	src := filepath.Join(testenv.ModelDir(t, "generator"), "generator", "1")
	root := t.TempDir()
	for _, v := range versions {
		copyDir(t, src, filepath.Join(root, v))
	}
	return root
}

// dropVersion publishes a copy of the generator as root/name/version the
// recommended way: copy to a hidden staging folder, then rename into place.
func dropVersion(t *testing.T, root, name, version string) {
	t.Helper()
	src := filepath.Join(testenv.ModelDir(t, "generator"), "generator", "1")
	staging := filepath.Join(root, name, ".staging-"+version)
	copyDir(t, src, staging)
	if err := os.Rename(staging, filepath.Join(root, name, version)); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	src, err := filepath.EvalSymlinks(src) // savedmodels/<name>/1 may be a link
	if err == nil {
		err = os.CopyFS(dst, os.DirFS(src))
	}
	if err != nil {
		t.Fatal(err)
	}
}

// inferToken is the infer-role token serveLifecycle's connection sends by default.
const inferToken = "lifecycle-infer-token"

// withInferToken sends inferToken on every call that carries no token of its own.
func withInferToken() grpc.DialOption {
	add := func(ctx context.Context) context.Context {
		if md, _ := metadata.FromOutgoingContext(ctx); len(md.Get("authorization")) == 0 {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+inferToken)
		}
		return ctx
	}
	return grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(add(ctx), method, req, reply, cc, opts...)
	})
}

// serveLifecycle serves root in-process with tokens on (an admin and an infer one),
// polling off; the connection it returns sends the infer token unless told otherwise.
func serveLifecycle(t *testing.T, root string, extra ...string) (*app, *grpc.ClientConn) {
	t.Helper()
	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte("# TOKEN ROLE NAME\n"+adminToken+" admin ops\n"+inferToken+" infer load\n"), 0o600)
	args := append([]string{"--model-dir", root, "--model-poll-interval", "0", "--auth-tokens-file", tokens, "--batch-max-size", "4"}, extra...)
	cfg, err := parseConfig(args, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, slog.New(slog.NewTextHandler(testLog{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.srv.SetServing(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.srv.GRPC.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()), withInferToken())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		a.srv.Shutdown(5 * time.Second)
		<-done
		a.close()
	})
	return a, conn
}

func admin(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+adminToken)
}

func reload(t *testing.T, conn *grpc.ClientConn) *pb.ReloadRepositoryResponse {
	t.Helper()
	resp, err := pb.NewModelServiceClient(conn).ReloadRepository(admin(ctxFor(t, 2*time.Minute)), &pb.ReloadRepositoryRequest{Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// states returns a model's versions and states as "2:AVAILABLE 1:UNLOADING".
func states(t *testing.T, conn *grpc.ClientConn, name string) string {
	t.Helper()
	resp, err := pb.NewModelServiceClient(conn).GetModelStatus(ctxFor(t, 10*time.Second), &pb.GetModelStatusRequest{Name: name})
	if status.Code(err) == codes.NotFound {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, v := range resp.Models[0].Versions {
		parts = append(parts, strings.TrimPrefix(v.State.String(), "VERSION_STATE_")+"@"+itoa(v.Version))
	}
	return strings.Join(parts, " ")
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func waitStates(t *testing.T, conn *grpc.ClientConn, name, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for states(t, conn, name) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: got states %q, want %q", name, states(t, conn, name), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func generateOne(ctx context.Context, conn *grpc.ClientConn, spec *pb.ModelSpec) (*pb.GenerateResponse, error) {
	return pb.NewGenerateServiceClient(conn).Generate(ctx, &pb.GenerateRequest{Model: spec, Category: "Dress", Count: 1, Seed: 7})
}

// TestVersionFlipsUnderLoad drops version 2 in while four clients call version 0
// without pause: no call fails, each client sees versions only move forward, and
// version 1 is unloaded once 2 serves.
func TestVersionFlipsUnderLoad(t *testing.T) {
	root := lifecycleRepo(t, "generator/1")
	_, conn := serveLifecycle(t, root)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var calls, failures int
	var seen [4][]int64
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				resp, err := generateOne(ctxFor(t, time.Minute), conn, nil)
				mu.Lock()
				calls++
				if err != nil {
					failures++
					t.Errorf("client %d: %v", i, err)
				} else if v := resp.Model.Version; len(seen[i]) == 0 || seen[i][len(seen[i])-1] != v {
					seen[i] = append(seen[i], v)
				}
				mu.Unlock()
			}
		}()
	}
	// A failed check below (t.Fatal in reload or waitStates) must stop the callers
	// before the server's cleanup closes their connection: left running, they would
	// call on the closed connection without pause and report it after the test has
	// ended, which panics and takes the package's remaining tests with it.
	defer func() { cancel(); wg.Wait() }()
	time.Sleep(300 * time.Millisecond)
	dropVersion(t, root, "generator", "2")
	reload(t, conn)
	waitStates(t, conn, "generator", "AVAILABLE@2")
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()
	t.Logf("%d calls, %d failed; versions per client: %v", calls, failures, seen)
	for i, s := range seen {
		if len(s) == 0 || s[len(s)-1] != 2 || (len(s) == 2 && s[0] != 1) || len(s) > 2 {
			t.Errorf("client %d saw versions %v, want 1 then 2 (or only 2)", i, s)
		}
	}
}

// TestOpenInferenceProtocolThroughVersionFlips is TestVersionFlipsUnderLoad for
// ModelInfer without a model_version: four clients call the generator's tensor model
// while versions 2 and 3 are dropped in. No call fails, and each answer names the
// version that ran, moving only forward.
func TestOpenInferenceProtocolThroughVersionFlips(t *testing.T) {
	root := lifecycleRepo(t, "generator/1")
	_, conn := serveLifecycle(t, root)
	v2 := oip.NewGRPCInferenceServiceClient(conn)
	z := make([]float32, 64)
	req := &oip.ModelInferRequest{ModelName: "generator", Inputs: []*oip.ModelInferRequest_InferInputTensor{
		{Name: "z", Datatype: "FP32", Shape: []int64{1, 64}, Contents: &oip.InferTensorContents{Fp32Contents: z}},
		{Name: "labels", Datatype: "INT32", Shape: []int64{1}, Contents: &oip.InferTensorContents{IntContents: []int32{3}}},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var calls, failures int
	var seen [4][]string
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				resp, err := v2.ModelInfer(ctxFor(t, time.Minute), req)
				mu.Lock()
				calls++
				if err != nil {
					failures++
					t.Errorf("client %d: %v", i, err)
				} else if v := resp.ModelVersion; len(seen[i]) == 0 || seen[i][len(seen[i])-1] != v {
					seen[i] = append(seen[i], v)
				}
				mu.Unlock()
			}
		}()
	}
	// As in TestVersionFlipsUnderLoad: a failed check stops the callers first.
	defer func() { cancel(); wg.Wait() }()
	for _, v := range []string{"2", "3"} {
		time.Sleep(300 * time.Millisecond)
		dropVersion(t, root, "generator", v)
		reload(t, conn)
		waitStates(t, conn, "generator", "AVAILABLE@"+v)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()
	t.Logf("%d calls, %d failed; versions per client: %v", calls, failures, seen)
	for i, s := range seen {
		if len(s) == 0 || s[len(s)-1] != "3" || !slices.IsSorted(s) {
			t.Errorf("client %d saw versions %v, want them rising to 3", i, s)
		}
	}
}

// TestPrecisionChangeUnderLoad changes the generator's precision line from fp32 to
// bf16 while four clients call it without pause: at the reload the serving version is
// loaded again in bf16 and swapped in, GetModel says bf16, and no call fails.
func TestPrecisionChangeUnderLoad(t *testing.T) {
	root := lifecycleRepo(t, "generator/1")
	config := filepath.Join(t.TempDir(), "models.conf")
	os.WriteFile(config, []byte("model generator\n  precision fp32\n"), 0o644)
	_, conn := serveLifecycle(t, root, "--model-config", config)
	precisionNow := func() string {
		t.Helper()
		resp, err := pb.NewModelServiceClient(conn).GetModel(ctxFor(t, 10*time.Second), &pb.GetModelRequest{Model: &pb.ModelSpec{Name: "generator"}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Model.Versions[0].Precision
	}
	if got := precisionNow(); got != "fp32" {
		t.Fatalf("precision %q at the start, want fp32", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var calls, failures int
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_, err := generateOne(ctxFor(t, time.Minute), conn, nil)
				mu.Lock()
				calls++
				if err != nil {
					failures++
					t.Errorf("client %d: %v", i, err)
				}
				mu.Unlock()
			}
		}()
	}
	// As in TestVersionFlipsUnderLoad: a failed check stops the callers first.
	defer func() { cancel(); wg.Wait() }()
	time.Sleep(300 * time.Millisecond)
	os.WriteFile(config, []byte("model generator\n  precision bf16\n"), 0o644)
	reload(t, conn)
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()
	t.Logf("%d calls, %d failed", calls, failures)
	if got := precisionNow(); got != "bf16" {
		t.Fatalf("precision %q after the reload, want bf16", got)
	}
	if got := states(t, conn, "generator"); got != "AVAILABLE@1" {
		t.Fatalf("states %q, want AVAILABLE@1", got)
	}
}

func TestBrokenVersionsLeaveServingAlone(t *testing.T) {
	root := lifecycleRepo(t, "generator/1", "gan/1")
	_, conn := serveLifecycle(t, root)

	// A corrupt saved_model.pb.
	dropVersion(t, root, "generator", "2")
	os.WriteFile(filepath.Join(root, "generator", "2", "saved_model.pb"), []byte("not a protobuf"), 0o644)
	// A missing variables file.
	dropVersion(t, root, "generator", "3")
	data, _ := filepath.Glob(filepath.Join(root, "generator", "3", "variables", "variables.data*"))
	for _, f := range data {
		os.Remove(f)
	}
	// Half-copied: saved_model.pb without variables/.
	os.MkdirAll(filepath.Join(root, "generator", "4"), 0o755)
	copyFile(t, filepath.Join(root, "generator", "1", "saved_model.pb"), filepath.Join(root, "generator", "4", "saved_model.pb"))
	reload(t, conn)
	waitStates(t, conn, "generator", "FAILED@3 FAILED@2 AVAILABLE@1")
	resp, _ := pb.NewModelServiceClient(conn).GetModelStatus(ctxFor(t, 10*time.Second), &pb.GetModelStatusRequest{Name: "generator"})
	for _, v := range resp.Models[0].Versions[:2] {
		if v.Error == "" || v.StateTime == nil || v.LoadStartTime == nil {
			t.Errorf("version %d: got %v, want the error and its times", v.Version, v)
		}
	}
	if r, err := generateOne(ctxFor(t, time.Minute), conn, &pb.ModelSpec{Name: "generator"}); err != nil || r.Model.Version != 1 {
		t.Fatalf("got %v %v, want version 1 still serving", r, err)
	}

	// The last version removed: UNLOADING, then gone; calls get NOT_FOUND naming what is loaded.
	os.RemoveAll(filepath.Join(root, "generator"))
	reload(t, conn)
	waitStates(t, conn, "generator", "")
	_, err := generateOne(ctxFor(t, time.Minute), conn, &pb.ModelSpec{Name: "generator"})
	if status.Code(err) != codes.NotFound || !strings.Contains(status.Convert(err).Message(), "gan:1") {
		t.Fatalf("got %v, want NOT_FOUND naming gan:1", err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLabelRouting(t *testing.T) {
	root := lifecycleRepo(t, "generator/1", "generator/2")
	conf := filepath.Join(t.TempDir(), "models.conf")
	os.WriteFile(conf, []byte("model generator\n  label stable 1\n"), 0o644)
	_, conn := serveLifecycle(t, root, "--model-config", conf)
	for _, tc := range []struct {
		spec *pb.ModelSpec
		want int64
	}{{nil, 2}, {&pb.ModelSpec{Name: "generator", VersionLabel: "stable"}, 1}, {&pb.ModelSpec{Name: "generator", Version: 2}, 2}} {
		r, err := generateOne(ctxFor(t, time.Minute), conn, tc.spec)
		if err != nil || r.Model.Version != tc.want {
			t.Fatalf("%v: got %v %v, want version %d", tc.spec, r.GetModel(), err, tc.want)
		}
	}
	_, err := generateOne(ctxFor(t, time.Minute), conn, &pb.ModelSpec{Name: "generator", VersionLabel: "canary"})
	if status.Code(err) != codes.NotFound || !strings.Contains(status.Convert(err).Message(), "stable=1") {
		t.Fatalf("unknown label: got %v, want NOT_FOUND naming stable=1", err)
	}
	ms := pb.NewModelServiceClient(conn)
	if _, err := ms.SetVersionLabels(admin(ctxFor(t, time.Minute)), &pb.SetVersionLabelsRequest{Name: "generator",
		VersionLabels: map[string]int64{"canary": 7}}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a label on a version not loaded: got %v, want FAILED_PRECONDITION", err)
	}
	if _, err := ms.SetVersionLabels(admin(ctxFor(t, time.Minute)), &pb.SetVersionLabelsRequest{Name: "generator",
		VersionLabels: map[string]int64{"canary": 2}}); err != nil {
		t.Fatal(err)
	}
	if r, err := generateOne(ctxFor(t, time.Minute), conn, &pb.ModelSpec{Name: "generator", VersionLabel: "canary"}); err != nil || r.Model.Version != 2 {
		t.Fatalf("canary: got %v %v, want version 2", r.GetModel(), err)
	}
	// A config naming an unloaded version is refused whole, naming the problem.
	os.WriteFile(conf, []byte("model generator\n  label stable 5\n"), 0o644)
	_, err = ms.ReloadRepository(admin(ctxFor(t, time.Minute)), &pb.ReloadRepositoryRequest{})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "version 5") {
		t.Fatalf("got %v, want INVALID_ARGUMENT naming version 5", err)
	}
	os.WriteFile(conf, []byte("model generator\n  policy lastest 2\n"), 0o644)
	_, err = ms.ReloadRepository(admin(ctxFor(t, time.Minute)), &pb.ReloadRepositoryRequest{})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "models.conf:2") {
		t.Fatalf("got %v, want INVALID_ARGUMENT naming models.conf:2", err)
	}
	if r, err := generateOne(ctxFor(t, time.Minute), conn, &pb.ModelSpec{Name: "generator", VersionLabel: "stable"}); err != nil || r.Model.Version != 1 {
		t.Fatalf("after refused configs, stable: got %v %v, want version 1", r.GetModel(), err)
	}
}

func TestHealthFollowsAvailability(t *testing.T) {
	root := lifecycleRepo(t, "generator/1")
	_, conn := serveLifecycle(t, root)
	h := healthpb.NewHealthClient(conn)
	check := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		r, err := h.Check(ctxFor(t, 10*time.Second), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("%s: %v", service, err)
		}
		return r.Status
	}
	serving, not := healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING
	for service, want := range map[string]healthpb.HealthCheckResponse_ServingStatus{
		"atelier.v1.GenerateService": serving, "atelier.model.generator": serving, "atelier.v1.ClassifyService": not} {
		if got := check(service); got != want {
			t.Errorf("%s: got %v, want %v", service, got, want)
		}
	}
	os.RemoveAll(filepath.Join(root, "generator"))
	reload(t, conn)
	waitStates(t, conn, "generator", "")
	for _, service := range []string{"atelier.v1.GenerateService", "atelier.model.generator"} {
		if got := check(service); got != not {
			t.Errorf("after removal, %s: got %v, want NOT_SERVING", service, got)
		}
	}
	dropVersion(t, root, "generator", "3")
	reload(t, conn)
	if got := check("atelier.v1.GenerateService"); got != serving {
		t.Errorf("after a new version, GenerateService: got %v, want SERVING", got)
	}
}

func TestAdminAuthOnTheBinary(t *testing.T) {
	root := lifecycleRepo(t, "generator/1")
	_, conn := serveLifecycle(t, root)
	// A connection that sends no token of its own.
	raw, err := grpc.NewClient(conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ms := pb.NewModelServiceClient(raw)
	bearer := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
	}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want codes.Code
	}{
		{"no token", context.Background(), codes.Unauthenticated},
		{"unknown token", bearer("not-a-token-the-server-knows"), codes.Unauthenticated},
		{"infer token", bearer(inferToken), codes.PermissionDenied},
		{"admin token", admin(context.Background()), codes.OK},
	} {
		_, err := ms.UnloadModel(tc.ctx, &pb.UnloadModelRequest{Model: &pb.ModelSpec{Name: "generator", Version: 9}})
		want := tc.want
		if want == codes.OK {
			want = codes.NotFound // authorised, and version 9 is not loaded
		}
		if status.Code(err) != want {
			t.Errorf("%s: got %v, want %v", tc.name, err, want)
		}
	}
}
