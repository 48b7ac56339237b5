package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/atelier-vision/atelier/internal/admission"
	"github.com/atelier-vision/atelier/internal/auth"
	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/filewatch"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

const (
	inferToken = "infer-token-0123456789abcdef"
	adminToken = "admin-token-0123456789abcdef"
)

func tokenFile(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func openTokens(t *testing.T, path string) *auth.Store {
	t.Helper()
	s, err := auth.Open(path, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func withToken(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// call invokes method with an empty request, as a unary call or by opening the stream
// and reading its first answer; it returns the call's code.
func call(ctx context.Context, conn *grpc.ClientConn, method string, streaming bool) codes.Code {
	if !streaming {
		return status.Code(conn.Invoke(ctx, method, &emptypb.Empty{}, &emptypb.Empty{}))
	}
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method)
	if err != nil {
		return status.Code(err)
	}
	s.SendMsg(&emptypb.Empty{})
	s.CloseSend()
	return status.Code(s.RecvMsg(&emptypb.Empty{}))
}

// TestRoleMatrix calls every registered RPC with no token, an unknown token, an infer
// token and an admin token, and checks each against the role table.
func TestRoleMatrix(t *testing.T) {
	tokens := openTokens(t, tokenFile(t, inferToken+" infer", adminToken+" admin ops"))
	// Under the default rules reflection needs admin, so every cell of the matrix is used.
	opts := Options{Security: Security{Tokens: tokens, Rules: auth.DefaultRules}}
	cores := Cores{Classifier: &fakeClassifier{}, Inference: noInference{}, Models: &fakeControl{}}
	conn, srv, logs := serveRepo(t, opts, nil, cores)
	methods := 0
	for svc, info := range srv.GRPC.GetServiceInfo() {
		for _, m := range info.Methods {
			method := "/" + svc + "/" + m.Name
			need := auth.Required(opts.Security.Rules, method)
			// The table is checked against a list written out here, so that a rule
			// that moves a method to another role, or a new method, is seen.
			if want, listed := wantRoles[method]; !listed {
				t.Errorf("%s is registered but not in wantRoles: decide its role", method)
			} else if need != want {
				t.Errorf("%s needs %v, want %v", method, need, want)
			}
			streaming := m.IsClientStream || m.IsServerStream
			methods++
			for _, tc := range []struct {
				who   string
				token string
				role  auth.Role
				known bool
			}{
				{"no token", "", auth.RoleNone, false},
				{"unknown token", "not-a-token-0123456789", auth.RoleNone, false},
				{"infer", inferToken, auth.RoleInfer, true},
				{"admin", adminToken, auth.RoleAdmin, true},
			} {
				ctx, cancel := context.WithTimeout(withToken(context.Background(), tc.token), 2*time.Second)
				got := call(ctx, conn, method, streaming)
				cancel()
				var want codes.Code = codes.OK // "let in": any code but the two below
				switch {
				case need == auth.Public:
				case !tc.known:
					want = codes.Unauthenticated
				case tc.role < need:
					want = codes.PermissionDenied
				}
				if want == codes.OK {
					if got == codes.Unauthenticated || got == codes.PermissionDenied {
						t.Errorf("%s with %s: got %v, want it let in (needs %v)", method, tc.who, got, need)
					}
				} else if got != want {
					t.Errorf("%s with %s: got %v, want %v (needs %v)", method, tc.who, got, want, need)
				}
			}
		}
	}
	if got := auth.Required(opts.Security.Rules, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"); got != auth.RoleAdmin {
		t.Fatalf("reflection needs %v, want admin", got)
	}
	if methods != len(wantRoles) {
		t.Fatalf("%d methods registered, %d in wantRoles", methods, len(wantRoles))
	}
	if strings.Contains(logs.String(), inferToken) || strings.Contains(logs.String(), adminToken) {
		t.Fatal("a token appears in the log")
	}
	if !strings.Contains(logs.String(), "token="+auth.Fingerprint(inferToken)) {
		t.Fatalf("the access log does not name the infer token by its fingerprint:\n%s", logs.String())
	}
}

// wantRoles is the role of every RPC the server registers, under auth.DefaultRules
// (where reflection needs admin).
var wantRoles = map[string]auth.Role{
	"/grpc.health.v1.Health/Check":                                   auth.Public,
	"/grpc.health.v1.Health/List":                                    auth.Public,
	"/grpc.health.v1.Health/Watch":                                   auth.Public,
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      auth.RoleAdmin,
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": auth.RoleAdmin,
	"/atelier.v1.ClassifyService/Classify":                           auth.RoleInfer,
	"/atelier.v1.ClassifyService/ClassifyStream":                     auth.RoleInfer,
	"/atelier.v1.DetectService/Detect":                               auth.RoleInfer,
	"/atelier.v1.DetectService/DetectStream":                         auth.RoleInfer,
	"/atelier.v1.GenerateService/Generate":                           auth.RoleInfer,
	"/atelier.v1.GenerateService/Interpolate":                        auth.RoleInfer,
	"/atelier.v1.AlertService/WatchAlerts":                           auth.RoleInfer,
	"/atelier.v1.ModelService/ListModels":                            auth.RoleInfer,
	"/atelier.v1.ModelService/GetModel":                              auth.RoleInfer,
	"/atelier.v1.ModelService/GetModelStatus":                        auth.RoleInfer,
	"/atelier.v1.ModelService/ReloadRepository":                      auth.RoleAdmin,
	"/atelier.v1.ModelService/LoadModel":                             auth.RoleAdmin,
	"/atelier.v1.ModelService/UnloadModel":                           auth.RoleAdmin,
	"/atelier.v1.ModelService/SetVersionLabels":                      auth.RoleAdmin,
	"/inference.GRPCInferenceService/ServerLive":                     auth.Public,
	"/inference.GRPCInferenceService/ServerReady":                    auth.Public,
	"/inference.GRPCInferenceService/ModelReady":                     auth.RoleInfer,
	"/inference.GRPCInferenceService/ServerMetadata":                 auth.RoleInfer,
	"/inference.GRPCInferenceService/ModelMetadata":                  auth.RoleInfer,
	"/inference.GRPCInferenceService/ModelInfer":                     auth.RoleInfer,
	"/inference.GRPCInferenceService/ModelStreamInfer":               auth.RoleInfer,
	"/inference.GRPCInferenceService/ModelConfig":                    auth.RoleInfer,
	"/inference.GRPCInferenceService/ModelStatistics":                auth.RoleInfer,
	"/inference.GRPCInferenceService/RepositoryIndex":                auth.RoleAdmin,
	"/inference.GRPCInferenceService/RepositoryModelLoad":            auth.RoleAdmin,
	"/inference.GRPCInferenceService/RepositoryModelUnload":          auth.RoleAdmin,
	// Not implemented (Unimplemented for whoever may call them); the settings RPCs
	// would change the server, so they move to admin if they are ever implemented.
	"/inference.GRPCInferenceService/SystemSharedMemoryStatus":     auth.RoleInfer,
	"/inference.GRPCInferenceService/SystemSharedMemoryRegister":   auth.RoleInfer,
	"/inference.GRPCInferenceService/SystemSharedMemoryUnregister": auth.RoleInfer,
	"/inference.GRPCInferenceService/CudaSharedMemoryStatus":       auth.RoleInfer,
	"/inference.GRPCInferenceService/CudaSharedMemoryRegister":     auth.RoleInfer,
	"/inference.GRPCInferenceService/CudaSharedMemoryUnregister":   auth.RoleInfer,
	"/inference.GRPCInferenceService/TraceSetting":                 auth.RoleInfer,
	"/inference.GRPCInferenceService/LogSettings":                  auth.RoleInfer,
}

func TestRequiredRoles(t *testing.T) {
	for _, tc := range []struct {
		method string
		want   auth.Role
	}{
		{"/grpc.health.v1.Health/Check", auth.Public},
		{"/atelier.v1.ClassifyService/Classify", auth.RoleInfer},
		{"/atelier.v1.ClassifyService/ClassifyStream", auth.RoleInfer},
		{"/atelier.v1.AlertService/WatchAlerts", auth.RoleInfer},
		{"/atelier.v1.ModelService/ListModels", auth.RoleInfer},
		{"/atelier.v1.ModelService/LoadModel", auth.RoleAdmin},
		{"/atelier.v1.ModelService/ReloadRepository", auth.RoleAdmin},
		{"/inference.GRPCInferenceService/ModelInfer", auth.RoleInfer},
		{"/inference.GRPCInferenceService/ServerReady", auth.Public},
		{"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", auth.RoleAdmin},
		{"/some.New/Thing", auth.RoleAdmin},
	} {
		if got := auth.Required(auth.DefaultRules, tc.method); got != tc.want {
			t.Errorf("Required(%s) = %v, want %v", tc.method, got, tc.want)
		}
	}
}

// TestTokenRotation: a token added to the file works as soon as the file is re-read,
// and a removed one stops, on a stream at its next frame.
func TestTokenRotation(t *testing.T) {
	path := tokenFile(t, inferToken+" infer")
	tokens := openTokens(t, path)
	w := filewatch.New(10*time.Millisecond, func() { tokens.Reload() }, path)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	conn, _ := serveWith(t, Options{Security: Security{Tokens: tokens}}, Cores{Classifier: &fakeClassifier{}})
	client := pb.NewClassifyServiceClient(conn)
	req := &pb.ClassifyRequest{Images: []*pb.Image{{Data: &pb.Image_Encoded{Encoded: []byte("png")}}}}

	stream, err := client.ClassifyStream(withToken(ctx, inferToken))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Config{Config: &pb.ClassifyStreamConfig{}}}); err != nil {
		t.Fatal(err)
	}
	frame := &pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Frame{Frame: &pb.StreamFrame{FrameId: 1, Image: req.Images[0]}}}
	if err := stream.Send(frame); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("first frame with a valid token: %v", err)
	}

	const next = "rotated-token-0123456789abcdef"
	if err := os.WriteFile(path, []byte(next+" infer\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, ok := tokens.Lookup(next); return ok })
	if _, err := client.Classify(withToken(ctx, next), req); err != nil {
		t.Fatalf("rotated token: %v", err)
	}
	if _, err := client.Classify(withToken(ctx, inferToken), req); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("removed token on a new call: got %v, want Unauthenticated", err)
	}
	frame.GetFrame().FrameId = 2
	stream.Send(frame)
	for {
		_, err = stream.Recv()
		if err != nil {
			break
		}
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("open stream after its token was removed: got %v, want Unauthenticated", err)
	}

	// A broken file is refused and the tokens in force stay.
	if err := os.WriteFile(path, []byte("short admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := client.Classify(withToken(ctx, next), req); err != nil {
		t.Fatalf("token after a broken file was refused: %v", err)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRateLimitIsPerToken: one token over its rate gets RESOURCE_EXHAUSTED with a
// retry-after trailer while another is unaffected.
func TestRateLimitIsPerToken(t *testing.T) {
	tokens := openTokens(t, tokenFile(t, inferToken+" infer a", adminToken+" infer b"))
	adm := admission.New(admission.Config{Rate: 1, Burst: 3})
	conn, _ := serveWith(t, Options{Security: Security{Tokens: tokens, Admission: adm}}, Cores{Classifier: &fakeClassifier{}})
	client := pb.NewClassifyServiceClient(conn)
	req := &pb.ClassifyRequest{Images: []*pb.Image{{Data: &pb.Image_Encoded{Encoded: []byte("png")}}}}
	ctx := context.Background()
	for i := range 3 {
		if _, err := client.Classify(withToken(ctx, inferToken), req); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	var trailer metadata.MD
	_, err := client.Classify(withToken(ctx, inferToken), req, grpc.Trailer(&trailer))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("call over the rate: got %v, want ResourceExhausted", err)
	}
	secs, convErr := strconv.Atoi(strings.Join(trailer.Get(RetryAfterHeader), ""))
	if convErr != nil || secs < 1 {
		t.Fatalf("retry-after trailer %q, want a positive number of seconds", trailer.Get(RetryAfterHeader))
	}
	if _, err := client.Classify(withToken(ctx, adminToken), req); err != nil {
		t.Fatalf("the other token was limited too: %v", err)
	}
}

func TestStreamCapPerToken(t *testing.T) {
	tokens := openTokens(t, tokenFile(t, inferToken+" infer a", adminToken+" infer b"))
	adm := admission.New(admission.Config{MaxStreams: 1})
	conn, _ := serveWith(t, Options{Security: Security{Tokens: tokens, Admission: adm}}, Cores{Classifier: &fakeClassifier{}})
	client := pb.NewAlertServiceClient(conn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, err := client.WatchAlerts(withToken(ctx, inferToken), &pb.WatchAlertsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first.Header() // the stream is open on the server
	second, err := client.WatchAlerts(withToken(ctx, inferToken), &pb.WatchAlertsRequest{})
	if err == nil {
		_, err = second.Recv()
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("second stream of one token: got %v, want ResourceExhausted", err)
	}
	other, err := client.WatchAlerts(withToken(ctx, adminToken), &pb.WatchAlertsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Header(); err != nil {
		t.Fatalf("another token's stream: %v", err)
	}
}

func TestPriorityHeaderIsChecked(t *testing.T) {
	conn, _ := serveWith(t, Options{}, Cores{Classifier: &fakeClassifier{}})
	client := pb.NewClassifyServiceClient(conn)
	req := &pb.ClassifyRequest{Images: []*pb.Image{{Data: &pb.Image_Encoded{Encoded: []byte("png")}}}}
	for _, tc := range []struct {
		prio string
		want codes.Code
	}{{"high", codes.OK}, {"low", codes.OK}, {"urgent", codes.InvalidArgument}} {
		ctx := metadata.AppendToOutgoingContext(context.Background(), PriorityHeader, tc.prio)
		if _, err := client.Classify(ctx, req); status.Code(err) != tc.want {
			t.Errorf("priority %q: got %v, want %v", tc.prio, err, tc.want)
		}
	}
}

// TestLongEchoIsClipped: a 10,000-character model name comes back as NOT_FOUND with a
// message well under a client's 8 KiB metadata limit.
func TestLongEchoIsClipped(t *testing.T) {
	name := strings.Repeat("m", 10_000)
	fake := &fakeClassifier{err: fmt.Errorf("%w: no model named %q (loaded: classifier, detector)", errkind.NotFound, name)}
	client := dial(t, fake)
	_, err := client.Classify(context.Background(), &pb.ClassifyRequest{
		Model:  &pb.ModelSpec{Name: name},
		Images: []*pb.Image{{Data: &pb.Image_Encoded{Encoded: []byte("png")}}},
	})
	st := status.Convert(err)
	if st.Code() != codes.NotFound {
		t.Fatalf("got %v, want NotFound", err)
	}
	if len(st.Message()) > 1024 || !strings.Contains(st.Message(), "[10002 bytes]") || !strings.Contains(st.Message(), "loaded: classifier") {
		t.Fatalf("message of %d bytes: %.300s", len(st.Message()), st.Message())
	}
}
func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestQueueSizeReportsTheValueSent: an out-of-range queue_size is reported as sent.
func TestQueueSizeReportsTheValueSent(t *testing.T) {
	for _, q := range []uint32{65, 1_000_000, 1<<32 - 1} {
		o, err := streamOptions(&pb.StreamOptions{QueueSize: q})
		if err == nil {
			err = o.Validate()
		}
		want := fmt.Sprintf("queue_size %d is out of range", q)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("queue_size %d: got %v, want %q", q, err, want)
		}
	}
}

// TestRateLimitPerPeerWithoutTokens: without a token file the bucket is the client's
// address, and health stays open.
func TestRateLimitPerPeerWithoutTokens(t *testing.T) {
	adm := admission.New(admission.Config{Rate: 0.5, Burst: 1})
	conn, _ := serveWith(t, Options{Security: Security{Admission: adm}}, Cores{Classifier: &fakeClassifier{}})
	client := pb.NewClassifyServiceClient(conn)
	req := &pb.ClassifyRequest{Images: []*pb.Image{{Data: &pb.Image_Encoded{Encoded: []byte("png")}}}}
	if _, err := client.Classify(context.Background(), req); err != nil {
		t.Fatalf("first call: %v", err)
	}
	if _, err := client.Classify(context.Background(), req); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("second call from the same peer: got %v, want ResourceExhausted", err)
	}
	for range 3 {
		if code := call(context.Background(), conn, "/grpc.health.v1.Health/Check", false); code == codes.ResourceExhausted {
			t.Fatal("health was rate limited")
		}
	}
}

// TestAuthorizationHeaderForms: the forms an attacker or a confused client may send.
// Only "Bearer <token>" headers are read; a call carrying two tokens (a client's own
// and an admin token for one call) gets the stronger one's role whatever their order.
func TestAuthorizationHeaderForms(t *testing.T) {
	tokens := openTokens(t, tokenFile(t, inferToken+" infer", adminToken+" admin"))
	conn, logs := serveWith(t, Options{Security: Security{Tokens: tokens}}, Cores{Classifier: &fakeClassifier{}, Models: &fakeControl{}})
	const (
		inferMethod = "/atelier.v1.ModelService/ListModels"
		adminMethod = "/atelier.v1.ModelService/ReloadRepository"
	)
	huge := "Bearer " + strings.Repeat("a", 64<<10)
	for _, tc := range []struct {
		name   string
		values []string
		method string
		want   codes.Code
	}{
		{"bearer", []string{"Bearer " + inferToken}, inferMethod, codes.OK},
		{"lower-case scheme", []string{"bearer " + inferToken}, inferMethod, codes.OK},
		{"upper-case scheme", []string{"BEARER " + inferToken}, inferMethod, codes.OK},
		{"spaces around the token", []string{"Bearer   " + inferToken + "  "}, inferMethod, codes.OK},
		{"empty", []string{""}, inferMethod, codes.Unauthenticated},
		{"scheme without a token", []string{"Bearer"}, inferMethod, codes.Unauthenticated},
		{"scheme and a space", []string{"Bearer "}, inferMethod, codes.Unauthenticated},
		{"no scheme", []string{inferToken}, inferMethod, codes.Unauthenticated},
		{"another scheme", []string{"Basic " + inferToken}, inferMethod, codes.Unauthenticated},
		{"huge", []string{huge}, inferMethod, codes.Unauthenticated},
		{"infer then admin", []string{"Bearer " + inferToken, "Bearer " + adminToken}, adminMethod, codes.OK},
		{"admin then infer", []string{"Bearer " + adminToken, "Bearer " + inferToken}, adminMethod, codes.OK},
		{"unknown then infer", []string{"Bearer not-a-token-0123456789", "Bearer " + inferToken}, inferMethod, codes.OK},
		{"two infer tokens on an admin rpc", []string{"Bearer " + inferToken, "Bearer " + inferToken}, adminMethod, codes.PermissionDenied},
		// A proxy may vouch for the first header while this server reads another:
		// a header of another form is refused, not skipped.
		{"another scheme then an admin token", []string{"Basic dXNlcjpwdw==", "Bearer " + adminToken}, adminMethod, codes.Unauthenticated},
		{"many headers", []string{"Bearer " + adminToken, "Bearer " + adminToken, "Bearer " + adminToken, "Bearer " + adminToken, "Bearer " + adminToken}, adminMethod, codes.Unauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md := metadata.MD{}
			for _, v := range tc.values {
				md.Append("authorization", v)
			}
			ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), md), 5*time.Second)
			defer cancel()
			err := conn.Invoke(ctx, tc.method, &emptypb.Empty{}, &emptypb.Empty{})
			got := status.Code(err)
			if tc.want == codes.OK {
				if got == codes.Unauthenticated || got == codes.PermissionDenied {
					t.Fatalf("got %v, want it let in", err)
				}
			} else if got != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if msg := status.Convert(err).Message(); len(msg) > 256 || strings.Contains(msg, inferToken) || strings.Contains(msg, adminToken) {
				t.Fatalf("the status message (%d bytes) echoes the header: %.100q", len(msg), msg)
			}
		})
	}
	if strings.Contains(logs.String(), inferToken) || strings.Contains(logs.String(), adminToken) {
		t.Fatal("a token appears in the log")
	}
	// The refusal of a known token for its role names that token.
	denied := regexp.MustCompile(`method=` + regexp.QuoteMeta(adminMethod) + ` code=PermissionDenied .*token=` + auth.Fingerprint(inferToken))
	if !denied.MatchString(logs.String()) {
		t.Fatalf("no access line names the infer token refused an admin RPC:\n%s", logs.String())
	}
}

// TestBearers: the header forms gRPC-Go's client cannot send (it refuses non-ASCII
// values), straight to the parser.
func TestBearers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		want   []string
		ok     bool
	}{
		{"none", nil, []string{}, true},
		{"one", []string{"Bearer abc"}, []string{"abc"}, true},
		{"non-ascii token", []string{"Bearer tökén-ünïcode-0123456789"}, []string{"tökén-ünïcode-0123456789"}, true},
		{"non-ascii scheme", []string{"Bëarer abc"}, nil, false},
		{"tab after the scheme", []string{"Bearer\tabc"}, nil, false},
		{"a control character only", []string{"Bearer \x00"}, []string{"\x00"}, true},
	} {
		got, err := bearers(tc.values)
		if (err == nil) != tc.ok || tc.ok && !slices.Equal(got, tc.want) {
			t.Errorf("%s: bearers(%q) = %q, %v; want %q, ok %v", tc.name, tc.values, got, err, tc.want, tc.ok)
		}
	}
}

// TestRevokedTokenEndsEveryStream: on every streaming RPC that needs a token, a
// stream opened with a token that is then removed from the file fails its next
// message with UNAUTHENTICATED, whatever the handler does with it.
func TestRevokedTokenEndsEveryStream(t *testing.T) {
	path := tokenFile(t, inferToken+" infer", adminToken+" admin")
	tokens := openTokens(t, path)
	admitted := make(chan string, 1)
	// An interceptor inside the guard's: it runs once the guard has let the stream in.
	signal := grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
		admitted <- info.FullMethod
		return next(srv, ss)
	})
	opts := Options{Security: Security{Tokens: tokens, Rules: auth.DefaultRules}, GRPC: []grpc.ServerOption{signal}}
	cores := Cores{Classifier: &fakeClassifier{}, Detector: fakeDetector{}, Generator: &fakeGenerator{}, Inference: noInference{}, Models: &fakeControl{}}
	conn, srv, _ := serveRepo(t, opts, nil, cores)
	streams := 0
	for svc, info := range srv.GRPC.GetServiceInfo() {
		for _, m := range info.Methods {
			method := "/" + svc + "/" + m.Name
			need := auth.Required(opts.Security.Rules, method)
			if !(m.IsClientStream || m.IsServerStream) || need == auth.Public {
				continue
			}
			streams++
			t.Run(strings.TrimPrefix(method, "/"), func(t *testing.T) {
				token := map[auth.Role]string{auth.RoleInfer: inferToken, auth.RoleAdmin: adminToken}[need]
				os.WriteFile(path, []byte(inferToken+" infer\n"+adminToken+" admin\n"), 0o600)
				if err := tokens.Reload(); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(withToken(context.Background(), token), 5*time.Second)
				defer cancel()
				s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method)
				if err != nil {
					t.Fatal(err)
				}
				select {
				case got := <-admitted:
					if got != method {
						t.Fatalf("admitted %s, want %s", got, method)
					}
				case <-ctx.Done():
					t.Fatal("the stream was not let in")
				}
				// Remove the token (keep one line: a file without tokens is refused).
				os.WriteFile(path, []byte("other-token-0123456789abcdef infer\n"), 0o600)
				if err := tokens.Reload(); err != nil {
					t.Fatal(err)
				}
				s.SendMsg(&emptypb.Empty{})
				s.CloseSend()
				for err == nil {
					err = s.RecvMsg(&emptypb.Empty{})
				}
				if status.Code(err) != codes.Unauthenticated {
					t.Fatalf("after the token was removed: got %v, want Unauthenticated", err)
				}
			})
		}
	}
	if streams < 7 {
		t.Fatalf("only %d streaming RPCs checked", streams)
	}
}

// TestStreamRateLimitSaysWhenToRetry: opening a stream counts against the rate, and a
// refused one carries the retry-after trailers as a refused unary call does.
func TestStreamRateLimitSaysWhenToRetry(t *testing.T) {
	tokens := openTokens(t, tokenFile(t, inferToken+" infer"))
	adm := admission.New(admission.Config{Rate: 0.5, Burst: 1})
	conn, _ := serveWith(t, Options{Security: Security{Tokens: tokens, Admission: adm}}, Cores{Classifier: &fakeClassifier{}})
	client := pb.NewAlertServiceClient(conn)
	ctx, cancel := context.WithTimeout(withToken(context.Background(), inferToken), 5*time.Second)
	defer cancel()
	first, err := client.WatchAlerts(ctx, &pb.WatchAlertsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Header(); err != nil {
		t.Fatalf("first stream: %v", err)
	}
	second, err := client.WatchAlerts(ctx, &pb.WatchAlertsRequest{})
	if err == nil {
		_, err = second.Recv()
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("second stream over the rate: got %v, want ResourceExhausted", err)
	}
	if got := second.Trailer().Get(RetryAfterHeader); len(got) != 1 || got[0] != "2" {
		t.Fatalf("retry-after trailer %q, want [2]", got)
	}
	if got := second.Trailer().Get(RetryAfterMSHeader); len(got) != 1 {
		t.Fatalf("retry-after-ms trailer %q, want one value", got)
	}
}
