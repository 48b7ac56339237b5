package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/internal/auth"
	"github.com/atelier-vision/atelier/internal/inference"
	"github.com/atelier-vision/atelier/internal/models"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

// repoControl is a lifecycle whose status, folders and load outcome a test sets; it
// records load and unload calls (fakeControl).
type repoControl struct {
	fakeControl
	status []models.ModelStatus
	disk   map[string][]int64
	load   models.VersionStatus // the outcome of LoadModel; zero: AVAILABLE
}

func (f *repoControl) Status(names ...string) []models.ModelStatus {
	var out []models.ModelStatus
	for _, st := range f.status {
		if len(names) == 0 || names[0] == st.Name {
			out = append(out, st)
		}
	}
	return out
}
func (f *repoControl) OnDisk() map[string][]int64 { return f.disk }
func (f *repoControl) LoadModel(_ context.Context, name string, v int64) (models.VersionStatus, error) {
	f.calls = append(f.calls, fmt.Sprintf("load %s %d", name, v))
	st := f.load
	if st.State == 0 {
		st.State = models.StateAvailable
	}
	st.Version, st.Pinned = v, true
	return st, f.err
}

// noInference is an inference core that knows no model.
type noInference struct{}

func (noInference) Names() []string { return nil }
func (noInference) Metadata(name, _ string) (inference.Metadata, error) {
	return inference.Metadata{}, fmt.Errorf("%w: no model %q", models.ErrNotFound, name)
}
func (noInference) Infer(context.Context, inference.Request) (inference.Response, error) {
	return inference.Response{}, errors.New("not run in this test")
}

const repoAdminToken = "repository-admin-token"

// serveRepository serves the inference service on ctl with an admin token and
// readerToken (none at all when tokens is false), and returns a client and a context
// carrying the admin token.
func serveRepository(t *testing.T, ctl ModelControl, tokens bool) (oip.GRPCInferenceServiceClient, context.Context) {
	t.Helper()
	var sec Security
	if tokens {
		table, err := auth.Parse([]byte(repoAdminToken + " admin ops\n" + readerToken + " infer reader\n"))
		if err != nil {
			t.Fatal(err)
		}
		sec.Tokens = auth.NewStatic(table)
	}
	conn, _ := serveWith(t, Options{Security: sec}, Cores{Inference: noInference{}, Models: ctl})
	return oip.NewGRPCInferenceServiceClient(conn), withToken(ctxT(t), repoAdminToken)
}

// TestInferenceServiceRoles: the repository RPCs are admin, the probes public and
// every other RPC of the service infer.
func TestInferenceServiceRoles(t *testing.T) {
	var methods []string
	for _, m := range oip.GRPCInferenceService_ServiceDesc.Methods {
		methods = append(methods, m.MethodName)
	}
	for _, s := range oip.GRPCInferenceService_ServiceDesc.Streams {
		methods = append(methods, s.StreamName)
	}
	admin := []string{"RepositoryIndex", "RepositoryModelLoad", "RepositoryModelUnload"}
	for _, m := range methods {
		full := "/" + oip.GRPCInferenceService_ServiceDesc.ServiceName + "/" + m
		want := auth.RoleInfer
		switch {
		case slices.Contains(admin, m):
			want = auth.RoleAdmin
			if !adminMethods[full] {
				t.Errorf("%s is not in adminMethods: it would be open on a server without --auth-tokens-file", full)
			}
		case m == "ServerLive" || m == "ServerReady":
			want = auth.Public
		}
		if got := auth.Required(auth.DefaultRules, full); got != want {
			t.Errorf("Required(%s) = %v, want %v", full, got, want)
		}
	}
}

func TestRepositoryRPCsAuth(t *testing.T) {
	tests := []struct {
		name   string
		tokens bool
		token  string
		want   codes.Code
		msg    string
	}{
		{"no token file: admin RPCs are off", false, repoAdminToken, codes.Unimplemented, "--auth-tokens-file"},
		{"no token", true, "", codes.Unauthenticated, "missing token"},
		{"unknown token", true, "not-a-token-of-this-server", codes.Unauthenticated, "unknown"},
		{"infer token", true, readerToken, codes.PermissionDenied, "needs admin"},
		{"admin token", true, repoAdminToken, codes.OK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctl := &repoControl{disk: map[string][]int64{"classifier": {1}}}
			c, _ := serveRepository(t, ctl, tc.tokens)
			ctx := withToken(ctxT(t), tc.token)
			calls := map[string]error{}
			_, calls["index"] = c.RepositoryIndex(ctx, &oip.RepositoryIndexRequest{})
			_, calls["load"] = c.RepositoryModelLoad(ctx, &oip.RepositoryModelLoadRequest{ModelName: "classifier"})
			_, calls["unload"] = c.RepositoryModelUnload(ctx, &oip.RepositoryModelUnloadRequest{ModelName: "classifier"})
			for rpc, err := range calls {
				if status.Code(err) != tc.want || !strings.Contains(status.Convert(err).Message(), tc.msg) {
					t.Errorf("%s: got %v, want %v containing %q", rpc, err, tc.want, tc.msg)
				}
			}
			if want := map[bool]int{true: 1, false: 0}[tc.want == codes.OK]; len(ctl.calls) != want {
				t.Errorf("the lifecycle got calls %v, want %d", ctl.calls, want)
			}
			// The rest of the service is not admin: an infer token (or none without a
			// token file) reaches the handler, and the probes need nothing.
			if _, err := c.ServerLive(ctxT(t), &oip.ServerLiveRequest{}); err != nil {
				t.Errorf("ServerLive without a token: %v", err)
			}
			// ServerMetadata lists the repository extension only where its RPCs answer.
			want := map[bool]string{true: "parameters,model_repository", false: "parameters"}[tc.tokens]
			if md, err := c.ServerMetadata(withToken(ctxT(t), readerToken), &oip.ServerMetadataRequest{}); err != nil || strings.Join(md.Extensions, ",") != want {
				t.Errorf("ServerMetadata: got %v, %v, want extensions %s", md, err, want)
			}
			ictx := ctxT(t)
			if tc.tokens {
				ictx = withToken(ictx, readerToken)
			}
			if _, err := c.ModelMetadata(ictx, &oip.ModelMetadataRequest{Name: "x"}); status.Code(err) != codes.NotFound {
				t.Errorf("ModelMetadata with an infer token: got %v, want NotFound from the handler", err)
			}
		})
	}
}

func TestRepositoryRPCsWithoutALifecycle(t *testing.T) {
	c, ctx := serveRepository(t, nil, true)
	_, err := c.RepositoryIndex(ctx, &oip.RepositoryIndexRequest{})
	if status.Code(err) != codes.Unimplemented || !strings.Contains(status.Convert(err).Message(), "RepositoryIndex") {
		t.Fatalf("got %v, want Unimplemented naming the RPC", err)
	}
	if md, err := c.ServerMetadata(ctx, &oip.ServerMetadataRequest{}); err != nil || strings.Join(md.Extensions, ",") != "parameters" {
		t.Fatalf("ServerMetadata without a lifecycle: got %v, %v, want only parameters", md, err)
	}
}

// lifecycle is a model with version 4 FAILED, 3 AVAILABLE, 2 WARMING and 1 only on
// disk, and a generator whose only version is UNLOADING.
func lifecycle() *repoControl {
	return &repoControl{
		status: []models.ModelStatus{
			{Name: "classifier", Role: models.RoleClassifier, Versions: []models.VersionStatus{
				{Version: 4, State: models.StateFailed, Err: errors.New("saved_model.pb is corrupt")},
				{Version: 3, State: models.StateAvailable},
				{Version: 2, State: models.StateWarming}}},
			{Name: "generator", Role: models.RoleGenerator, Versions: []models.VersionStatus{{Version: 7, State: models.StateUnloading}}},
		},
		disk: map[string][]int64{"classifier": {4, 3, 2, 1}, "detector": {5}},
	}
}

func TestRepositoryIndex(t *testing.T) {
	c, ctx := serveRepository(t, lifecycle(), true)
	tests := []struct {
		ready bool
		want  []string
	}{
		{false, []string{
			"classifier 4 UNAVAILABLE failed to load: saved_model.pb is corrupt",
			"classifier 3 READY ",
			"classifier 2 LOADING warming up",
			"classifier 1 UNAVAILABLE not loaded",
			"detector 5 UNAVAILABLE not loaded",
			"generator 7 UNLOADING ",
		}},
		{true, []string{"classifier 3 READY "}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("ready=%v", tc.ready), func(t *testing.T) {
			resp, err := c.RepositoryIndex(ctx, &oip.RepositoryIndexRequest{Ready: tc.ready})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range resp.Models {
				got = append(got, strings.Join([]string{m.Name, m.Version, m.State, m.Reason}, " "))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func param(v any) *oip.ModelRepositoryParameter {
	switch v := v.(type) {
	case int64:
		return &oip.ModelRepositoryParameter{ParameterChoice: &oip.ModelRepositoryParameter_Int64Param{Int64Param: v}}
	case string:
		return &oip.ModelRepositoryParameter{ParameterChoice: &oip.ModelRepositoryParameter_StringParam{StringParam: v}}
	case bool:
		return &oip.ModelRepositoryParameter{ParameterChoice: &oip.ModelRepositoryParameter_BoolParam{BoolParam: v}}
	}
	return &oip.ModelRepositoryParameter{ParameterChoice: &oip.ModelRepositoryParameter_BytesParam{BytesParam: []byte("x")}}
}

type params = map[string]*oip.ModelRepositoryParameter

func TestRepositoryModelLoad(t *testing.T) {
	tests := []struct {
		name   string
		model  string
		params params
		load   models.VersionStatus
		want   codes.Code
		msg    string
		calls  []string
	}{
		{"the newest version on disk", "classifier", nil, models.VersionStatus{}, codes.OK, "", []string{"load classifier 4"}},
		{"a model with nothing loaded", "detector", nil, models.VersionStatus{}, codes.OK, "", []string{"load detector 5"}},
		{"version as int64", "classifier", params{"version": param(int64(1))}, models.VersionStatus{}, codes.OK, "", []string{"load classifier 1"}},
		{"version as a string", "classifier", params{"version": param("2")}, models.VersionStatus{}, codes.OK, "", []string{"load classifier 2"}},
		{"a failed load", "classifier", nil, models.VersionStatus{State: models.StateFailed, Err: errors.New("variables are missing")},
			codes.FailedPrecondition, `version 4 of "classifier" failed to load: variables are missing`, []string{"load classifier 4"}},
		{"unknown model", "nope", nil, models.VersionStatus{}, codes.NotFound, `"nope"`, nil},
		{"no model name", "", nil, models.VersionStatus{}, codes.InvalidArgument, "model_name", nil},
		{"version zero", "classifier", params{"version": param(int64(0))}, models.VersionStatus{}, codes.InvalidArgument, ">= 1, got 0", nil},
		{"version not a number", "classifier", params{"version": param("latest")}, models.VersionStatus{}, codes.InvalidArgument, `got "latest"`, nil},
		{"version negative", "classifier", params{"version": param(int64(-1))}, models.VersionStatus{}, codes.InvalidArgument, `"version" must be a version number >= 1, got -1`, nil},
		{"version past int64", "classifier", params{"version": param("99999999999999999999")}, models.VersionStatus{}, codes.InvalidArgument,
			`"version" must be a version number, got "99999999999999999999"`, nil},
		{"version as bytes", "classifier", params{"version": param(nil)}, models.VersionStatus{}, codes.InvalidArgument, "int64 or a string", nil},
		{"a triton config", "classifier", params{"config": param(`{"backend":"tensorflow"}`)}, models.VersionStatus{}, codes.InvalidArgument, "no Triton model configuration", nil},
		{"a file", "classifier", params{"file:1/model.savedmodel/saved_model.pb": param(nil)}, models.VersionStatus{}, codes.InvalidArgument, "only from --model-dir", nil},
		{"unload_dependents is not a load parameter", "classifier", params{"unload_dependents": param(true)}, models.VersionStatus{}, codes.InvalidArgument, "unknown parameter", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctl := lifecycle()
			ctl.load = tc.load
			c, ctx := serveRepository(t, ctl, true)
			_, err := c.RepositoryModelLoad(ctx, &oip.RepositoryModelLoadRequest{ModelName: tc.model, Parameters: tc.params})
			if status.Code(err) != tc.want || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.msg)
			}
			if !slices.Equal(ctl.calls, tc.calls) {
				t.Fatalf("the lifecycle got %v, want %v", ctl.calls, tc.calls)
			}
		})
	}
}

func TestRepositoryModelUnload(t *testing.T) {
	labelled := func(c *repoControl) { c.status[0].Labels = map[string]int64{"canary": 4, "stable": 3} }
	twoAvailable := func(c *repoControl) { c.status[0].Versions[0].State = models.StateAvailable }
	tests := []struct {
		name   string
		setup  func(*repoControl)
		model  string
		params params
		err    error
		want   codes.Code
		msg    string
		calls  []string
	}{
		{"every available version", twoAvailable, "classifier", params{"unload_dependents": param(false)}, nil, codes.OK, "",
			[]string{"unload classifier 4", "unload classifier 3"}},
		{"one version", nil, "classifier", params{"version": param(int64(3))}, nil, codes.OK, "", []string{"unload classifier 3"}},
		{"a labelled version leaves all loaded", labelled, "classifier", nil, nil, codes.FailedPrecondition, `label "stable" names version 3`, nil},
		{"a model with nothing loaded", nil, "detector", nil, nil, codes.OK, "", nil},
		{"a model with nothing available", nil, "generator", nil, nil, codes.OK, "", nil},
		{"unknown model", nil, "nope", nil, nil, codes.NotFound, "models on disk: classifier, detector", nil},
		{"the lifecycle refuses", nil, "classifier", params{"version": param(int64(9))},
			fmt.Errorf("%w: version 9 of \"classifier\" is not available", models.ErrNotFound), codes.NotFound, "version 9", []string{"unload classifier 9"}},
		{"unload_dependents not a bool", nil, "classifier", params{"unload_dependents": param("yes")}, nil, codes.InvalidArgument, "must be a bool", nil},
		{"no model name", nil, "", nil, nil, codes.InvalidArgument, "model_name", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctl := lifecycle()
			if tc.setup != nil {
				tc.setup(ctl)
			}
			ctl.err = tc.err
			c, ctx := serveRepository(t, ctl, true)
			_, err := c.RepositoryModelUnload(ctx, &oip.RepositoryModelUnloadRequest{ModelName: tc.model, Parameters: tc.params})
			if status.Code(err) != tc.want || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.msg)
			}
			if !slices.Equal(ctl.calls, tc.calls) {
				t.Fatalf("the lifecycle got %v, want %v", ctl.calls, tc.calls)
			}
		})
	}
}
