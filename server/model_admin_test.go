package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/internal/auth"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/tensor"
	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// fakeControl records the admin calls it gets and answers from its fields.
type fakeControl struct {
	calls []string
	err   error
}

func (f *fakeControl) Status(names ...string) []models.ModelStatus {
	return []models.ModelStatus{{Name: "classifier", Role: models.RoleClassifier, Policy: models.DefaultPolicy,
		Labels: map[string]int64{"stable": 3}, Versions: []models.VersionStatus{
			{Version: 4, State: models.StateFailed, Err: errors.New("corrupt"), StateTime: time.Unix(100, 0)},
			{Version: 3, State: models.StateAvailable, StateTime: time.Unix(50, 0), AvailableTime: time.Unix(50, 0)}}}}
}
func (f *fakeControl) OnDisk() map[string][]int64 {
	return map[string][]int64{"classifier": {4, 3, 2}}
}
func (f *fakeControl) StatusOf(name string) (models.ModelStatus, error) {
	if name != "classifier" {
		return models.ModelStatus{}, fmt.Errorf("%w: no model named %q (known: classifier)", models.ErrNotFound, name)
	}
	return f.Status()[0], nil
}
func (f *fakeControl) Reload(context.Context, bool) error {
	f.calls = append(f.calls, "reload")
	return f.err
}
func (f *fakeControl) LoadModel(_ context.Context, name string, v int64) (models.VersionStatus, error) {
	f.calls = append(f.calls, fmt.Sprintf("load %s %d", name, v))
	return models.VersionStatus{Version: v, State: models.StateAvailable, Pinned: true}, f.err
}
func (f *fakeControl) UnloadModel(name string, v int64) error {
	f.calls = append(f.calls, fmt.Sprintf("unload %s %d", name, v))
	return f.err
}
func (f *fakeControl) SetLabels(name string, l map[string]int64) (map[string]int64, error) {
	f.calls = append(f.calls, fmt.Sprintf("label %s %v", name, l))
	return l, f.err
}

// readerToken is a token of the infer role that serveAdmin's servers also know.
const readerToken = "infer-token-for-tests"

// serveAdmin serves the whole server with the given admin tokens (and readerToken;
// no tokens at all: no --auth-tokens-file) and the fake control.
func serveAdmin(t *testing.T, tokens []string, ctl ModelControl, repo *models.Repository) (*grpc.ClientConn, *Server, *testenv.Buffer) {
	t.Helper()
	var sec Security
	if len(tokens) > 0 {
		lines := readerToken + " infer reader\n"
		for i, tok := range tokens {
			lines += fmt.Sprintf("%s admin admin-%d\n", tok, i)
		}
		table, err := auth.Parse([]byte(lines))
		if err != nil {
			t.Fatal(err)
		}
		sec.Tokens = auth.NewStatic(table)
	}
	return serveRepo(t, Options{Security: sec}, repo, Cores{Models: ctl})
}

func TestAdminAuthMatrix(t *testing.T) {
	const secret = "s3cret-token-value"
	tests := []struct {
		name   string
		tokens []string
		header string
		want   codes.Code
	}{
		{"admin off", nil, "Bearer " + secret, codes.Unimplemented},
		{"no token", []string{secret}, "", codes.Unauthenticated},
		{"not a bearer token", []string{secret}, "Basic " + secret, codes.Unauthenticated},
		{"unknown token", []string{secret}, "Bearer wrong-token-of-some-length", codes.Unauthenticated},
		{"prefix of the token", []string{secret}, "Bearer s3cret", codes.Unauthenticated},
		{"a token of the infer role", []string{secret}, "Bearer " + readerToken, codes.PermissionDenied},
		{"right token", []string{"another-admin-token", secret}, "Bearer " + secret, codes.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctl := &fakeControl{}
			conn, _, logs := serveAdmin(t, tc.tokens, ctl, nil)
			c := pb.NewModelServiceClient(conn)
			ctx := context.Background()
			if tc.header != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tc.header)
			}
			calls := map[string]error{}
			_, calls["reload"] = c.ReloadRepository(ctx, &pb.ReloadRepositoryRequest{})
			_, calls["load"] = c.LoadModel(ctx, &pb.LoadModelRequest{Model: &pb.ModelSpec{Name: "classifier", Version: 3}})
			_, calls["unload"] = c.UnloadModel(ctx, &pb.UnloadModelRequest{Model: &pb.ModelSpec{Name: "classifier", Version: 3}})
			_, calls["label"] = c.SetVersionLabels(ctx, &pb.SetVersionLabelsRequest{Name: "classifier", VersionLabels: map[string]int64{"stable": 3}})
			for rpc, err := range calls {
				if got := status.Code(err); got != tc.want {
					t.Errorf("%s: got %v (%v), want %v", rpc, got, err, tc.want)
				}
			}
			if wantCalls := map[bool]int{true: 4, false: 0}[tc.want == codes.OK]; len(ctl.calls) != wantCalls {
				t.Errorf("the core got %d calls %v, want %d", len(ctl.calls), ctl.calls, wantCalls)
			}
			// Status is not an admin RPC: any token will do, and none without tokens.
			sctx := context.Background()
			if tc.tokens != nil {
				sctx = metadata.AppendToOutgoingContext(sctx, "authorization", "Bearer "+readerToken)
			}
			if _, err := c.GetModelStatus(sctx, &pb.GetModelStatusRequest{}); err != nil {
				t.Errorf("GetModelStatus: %v", err)
			}
			if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), "s3cret") {
				t.Errorf("the log shows the token:\n%s", logs.String())
			}
		})
	}
}

func TestAdminRequestChecks(t *testing.T) {
	ctl := &fakeControl{}
	conn, _, _ := serveAdmin(t, []string{"admin-token-for-tests"}, ctl, nil)
	c := pb.NewModelServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer admin-token-for-tests")
	tests := []struct {
		name string
		call func() error
		want codes.Code
		msg  string
	}{
		{"load without name", func() error {
			_, err := c.LoadModel(ctx, &pb.LoadModelRequest{Model: &pb.ModelSpec{Version: 3}})
			return err
		}, codes.InvalidArgument, "model.name is required"},
		{"load without version", func() error {
			_, err := c.LoadModel(ctx, &pb.LoadModelRequest{Model: &pb.ModelSpec{Name: "classifier"}})
			return err
		}, codes.InvalidArgument, "model.version must be a version number"},
		{"load negative version", func() error {
			_, err := c.LoadModel(ctx, &pb.LoadModelRequest{Model: &pb.ModelSpec{Name: "classifier", Version: -3}})
			return err
		}, codes.InvalidArgument, "model.version must be a version number >= 1, got -3"},
		{"unload without model", func() error {
			_, err := c.UnloadModel(ctx, &pb.UnloadModelRequest{})
			return err
		}, codes.InvalidArgument, "model.name is required"},
		{"unload by label", func() error {
			_, err := c.UnloadModel(ctx, &pb.UnloadModelRequest{Model: &pb.ModelSpec{Name: "classifier", VersionLabel: "stable"}})
			return err
		}, codes.InvalidArgument, "version_label is not accepted"},
		{"labels without name", func() error {
			_, err := c.SetVersionLabels(ctx, &pb.SetVersionLabelsRequest{VersionLabels: map[string]int64{"a": 1}})
			return err
		}, codes.InvalidArgument, "name is required"},
		{"no labels", func() error {
			_, err := c.SetVersionLabels(ctx, &pb.SetVersionLabelsRequest{Name: "classifier"})
			return err
		}, codes.InvalidArgument, "version_labels is empty"},
		{"describe a negative version", func() error {
			_, err := c.GetModel(ctx, &pb.GetModelRequest{Model: &pb.ModelSpec{Name: "classifier", Version: -1}})
			return err
		}, codes.InvalidArgument, "model.version -1 is negative"},
		{"status of an unknown model", func() error {
			_, err := c.GetModelStatus(ctx, &pb.GetModelStatusRequest{Name: "nope"})
			return err
		}, codes.NotFound, `no model named "nope" (known: classifier)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if status.Code(err) != tc.want || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.msg)
			}
		})
	}
	if len(ctl.calls) != 0 {
		t.Fatalf("bad requests reached the core: %v", ctl.calls)
	}
	// The core's errors go through the error table.
	ctl.err = fmt.Errorf("%w: label names version 9", models.ErrLabelTarget)
	_, err := c.SetVersionLabels(ctx, &pb.SetVersionLabelsRequest{Name: "classifier", VersionLabels: map[string]int64{"a": 9}})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("got %v, want FailedPrecondition", err)
	}
}

func TestGetModelStatusConvertsStates(t *testing.T) {
	conn, _, _ := serveAdmin(t, nil, &fakeControl{}, nil)
	resp, err := pb.NewModelServiceClient(conn).GetModelStatus(context.Background(), &pb.GetModelStatusRequest{Name: "classifier"})
	if err != nil {
		t.Fatal(err)
	}
	m := resp.Models[0]
	if m.Policy != "latest 1" || m.VersionLabels["stable"] != 3 || len(m.Versions) != 2 {
		t.Fatalf("got %v", m)
	}
	if v := m.Versions[0]; v.State != pb.VersionState_VERSION_STATE_FAILED || v.Error != "corrupt" || v.StateTime.AsTime().Unix() != 100 {
		t.Fatalf("got %v, want version 4 FAILED with its error and time", v)
	}
	if v := m.Versions[1]; v.State != pb.VersionState_VERSION_STATE_AVAILABLE || v.AvailableTime.AsTime().Unix() != 50 {
		t.Fatalf("got %v, want version 3 AVAILABLE since 50", v)
	}
}

// idleEngine is an engine that is never run.
type idleEngine struct{}

func (idleEngine) Run(context.Context, string, map[string]*tensor.Tensor, []string) (map[string]*tensor.Tensor, error) {
	return nil, errors.New("not run in this test")
}
func (idleEngine) Close() error { return nil }

// TestHealthFollowsAvailableRoles serves a repository holding only a generator: the
// generate service and the model are SERVING, the classify and detect services not.
func TestHealthFollowsAvailableRoles(t *testing.T) {
	sig := tensor.Signature{Name: models.ServingSignature,
		Inputs:  []tensor.Info{{Key: "labels", DType: tensor.Int32, Shape: []int64{-1}}, {Key: "z", DType: tensor.Float32, Shape: []int64{-1, 8}}},
		Outputs: []tensor.Info{{Key: "images", DType: tensor.Uint8, Shape: []int64{-1, 28, 28, 1}}}}
	gan, err := models.NewModel(models.Spec{Name: "gan", Version: 1}, "", idleEngine{}, []tensor.Signature{sig}, nil)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := models.NewRepository(gan)
	if err != nil {
		t.Fatal(err)
	}
	conn, srv, _ := serveAdmin(t, nil, &fakeControl{}, repo)
	h := healthpb.NewHealthClient(conn)
	check := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		resp, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("%s: %v", service, err)
		}
		return resp.Status
	}
	if got := check("atelier.v1.GenerateService"); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("before SetServing: got %v, want NOT_SERVING", got)
	}
	srv.SetServing(true)
	want := map[string]healthpb.HealthCheckResponse_ServingStatus{
		"":                           healthpb.HealthCheckResponse_SERVING,
		"atelier.v1.GenerateService": healthpb.HealthCheckResponse_SERVING,
		"atelier.v1.ModelService":    healthpb.HealthCheckResponse_SERVING,
		"atelier.v1.ClassifyService": healthpb.HealthCheckResponse_NOT_SERVING,
		"atelier.v1.DetectService":   healthpb.HealthCheckResponse_NOT_SERVING,
		"atelier.model.gan":          healthpb.HealthCheckResponse_SERVING,
	}
	for service, w := range want {
		if got := check(service); got != w {
			t.Errorf("%q: got %v, want %v", service, got, w)
		}
	}
	srv.SetServing(false)
	if got := check("atelier.model.gan"); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("after SetServing(false): got %v, want NOT_SERVING", got)
	}
}
