package server

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/atelier-vision/atelier/internal/batching"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/inference"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/prep"
	"github.com/atelier-vision/atelier/internal/tensor"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

type inputT = oip.ModelInferRequest_InferInputTensor

type outputT = oip.ModelInferRequest_InferRequestedOutputTensor

// badInfer is a bad ModelInfer request and the code and message words it earns.
type badInfer struct {
	name string
	req  *oip.ModelInferRequest
	code codes.Code
	want []string // in the message
}

// badInferRequests are the bad requests ModelInfer and ModelStreamInfer must refuse.
func badInferRequests() []badInfer {
	good := pixels(1)
	img := func(shape []int64, raw []byte) *oip.ModelInferRequest {
		return &oip.ModelInferRequest{ModelName: "classifier_image",
			Inputs: []*inputT{{Name: "image", Datatype: "BYTES", Shape: shape}}, RawInputContents: [][]byte{raw}}
	}
	prefix := func(n uint32, body string) []byte { return append(binary.LittleEndian.AppendUint32(nil, n), body...) }
	withVersion := func(v string) *oip.ModelInferRequest { r := tensorReq(good); r.ModelVersion = v; return r }
	withParams := func(p map[string]*oip.InferParameter, in map[string]*oip.InferParameter, outs ...*outputT) *oip.ModelInferRequest {
		r := tensorReq(good)
		r.Parameters, r.Inputs[0].Parameters, r.Outputs = p, in, outs
		return r
	}
	str := func(v string) *oip.InferParameter {
		return &oip.InferParameter{ParameterChoice: &oip.InferParameter_StringParam{StringParam: v}}
	}
	i64 := func(v int64) *oip.InferParameter {
		return &oip.InferParameter{ParameterChoice: &oip.InferParameter_Int64Param{Int64Param: v}}
	}
	shm := map[string]*oip.InferParameter{"shared_memory_region": str("input0"), "shared_memory_byte_size": i64(784)}
	return []badInfer{
		{"unknown model", &oip.ModelInferRequest{ModelName: "nope"}, codes.NotFound, []string{"nope", "classifier"}},
		{"unknown version", func() *oip.ModelInferRequest { r := tensorReq(good); r.ModelVersion = "9"; return r }(), codes.NotFound, []string{"no version 9"}},
		{"bad version", func() *oip.ModelInferRequest { r := tensorReq(good); r.ModelVersion = "x"; return r }(), codes.InvalidArgument, []string{"model_version"}},
		{"unknown input", &oip.ModelInferRequest{ModelName: "classifier", Inputs: []*inputT{{Name: "pixels", Datatype: "UINT8", Shape: []int64{1, 28, 28, 1}}}, RawInputContents: [][]byte{good}},
			codes.InvalidArgument, []string{`"pixels"`, "no such input"}},
		{"missing input", &oip.ModelInferRequest{ModelName: "classifier"}, codes.InvalidArgument, []string{`"images"`, "missing"}},
		{"batch over the limit", func() *oip.ModelInferRequest {
			many := make([][]byte, 65)
			for i := range many {
				many[i] = good
			}
			return tensorReq(many...)
		}(), codes.InvalidArgument, []string{`"images"`, "65 examples is over the limit of 64"}},
		{"duplicate input", &oip.ModelInferRequest{ModelName: "classifier", Inputs: []*inputT{
			{Name: "images", Datatype: "UINT8", Shape: []int64{1, 28, 28, 1}}, {Name: "images", Datatype: "UINT8", Shape: []int64{1, 28, 28, 1}}},
			RawInputContents: [][]byte{good, good}}, codes.InvalidArgument, []string{`"images"`, "twice"}},
		{"wrong datatype", &oip.ModelInferRequest{ModelName: "classifier", Inputs: []*inputT{{Name: "images", Datatype: "FP32", Shape: []int64{1, 28, 28, 1}}},
			RawInputContents: [][]byte{make([]byte, 4*784)}}, codes.InvalidArgument, []string{`"images"`, "FP32", "want UINT8"}},
		{"wrong shape", &oip.ModelInferRequest{ModelName: "classifier", Inputs: []*inputT{{Name: "images", Datatype: "UINT8", Shape: []int64{1, 14, 56, 1}}},
			RawInputContents: [][]byte{good}}, codes.InvalidArgument, []string{`"images"`, "dimension 1 must be 28"}},
		{"wrong rank", &oip.ModelInferRequest{ModelName: "classifier", Inputs: []*inputT{{Name: "images", Datatype: "UINT8", Shape: []int64{784}}},
			RawInputContents: [][]byte{good}}, codes.InvalidArgument, []string{`"images"`, "rank 1"}},
		{"raw size", &oip.ModelInferRequest{ModelName: "classifier", Inputs: []*inputT{{Name: "images", Datatype: "UINT8", Shape: []int64{2, 28, 28, 1}}},
			RawInputContents: [][]byte{good}}, codes.InvalidArgument, []string{`"images"`, "784 bytes, want 1568"}},
		{"raw and contents", &oip.ModelInferRequest{ModelName: "classifier", Inputs: []*inputT{{Name: "images", Datatype: "UINT8", Shape: []int64{1, 28, 28, 1},
			Contents: &oip.InferTensorContents{UintContents: toUint32(good)}}}, RawInputContents: [][]byte{good}},
			codes.InvalidArgument, []string{`"images"`, "both set"}},
		{"raw count", &oip.ModelInferRequest{ModelName: "classifier", Inputs: []*inputT{{Name: "images", Datatype: "UINT8", Shape: []int64{1, 28, 28, 1}}},
			RawInputContents: [][]byte{good, good}}, codes.InvalidArgument, []string{"raw_input_contents has 2 entries"}},
		{"no data", &oip.ModelInferRequest{ModelName: "classifier", Inputs: []*inputT{{Name: "images", Datatype: "UINT8", Shape: []int64{1, 28, 28, 1}}}},
			codes.InvalidArgument, []string{`"images"`, "no data"}},
		{"typed count", &oip.ModelInferRequest{ModelName: "classifier", Inputs: []*inputT{{Name: "images", Datatype: "UINT8", Shape: []int64{1, 28, 28, 1},
			Contents: &oip.InferTensorContents{UintContents: []uint32{1, 2}}}}}, codes.InvalidArgument, []string{`"images"`, "uint_contents holds 2 elements, want 784"}},
		{"typed over 255", &oip.ModelInferRequest{ModelName: "classifier", Inputs: []*inputT{{Name: "images", Datatype: "UINT8", Shape: []int64{1, 28, 28, 1},
			Contents: &oip.InferTensorContents{UintContents: append(make([]uint32, 783), 256)}}}}, codes.InvalidArgument, []string{`"images"`, "over 255"}},
		{"negative dimension", &oip.ModelInferRequest{ModelName: "classifier", Inputs: []*inputT{{Name: "images", Datatype: "UINT8", Shape: []int64{-1, 28, 28, 1}}},
			RawInputContents: [][]byte{good}}, codes.InvalidArgument, []string{`"images"`, "dimension 0 is -1"}},
		{"overflowing dimension", &oip.ModelInferRequest{ModelName: "classifier", Inputs: []*inputT{{Name: "images", Datatype: "UINT8", Shape: []int64{1 << 40, 1 << 40, 28, 1}}},
			RawInputContents: [][]byte{good}}, codes.InvalidArgument, []string{`"images"`, "more than"}},
		{"empty batch", &oip.ModelInferRequest{ModelName: "classifier", Inputs: []*inputT{{Name: "images", Datatype: "UINT8", Shape: []int64{0, 28, 28, 1}}},
			RawInputContents: [][]byte{{}}}, codes.InvalidArgument, []string{"batch dimension is 0"}},
		{"unknown output", func() *oip.ModelInferRequest {
			r := tensorReq(good)
			r.Outputs = []*oip.ModelInferRequest_InferRequestedOutputTensor{{Name: "logits"}}
			return r
		}(), codes.InvalidArgument, []string{`"logits"`, "no such output"}},
		{"BYTES prefix past the buffer", img([]int64{1}, prefix(1000, "abc")), codes.InvalidArgument, []string{`"image"`, "length prefix 1000 runs past"}},
		{"BYTES short prefix", img([]int64{2}, prefix(3, "abc")), codes.InvalidArgument, []string{`"image"`, "too few for its 4-byte length"}},
		{"BYTES left over", img([]int64{1}, append(prefix(3, "abc"), 'x')), codes.InvalidArgument, []string{`"image"`, "left over"}},
		{"image not decodable", img([]int64{1}, prefix(3, "abc")), codes.InvalidArgument, []string{`input "image": image 0`}},
		{"too many images", img([]int64{65}, nil), codes.InvalidArgument, []string{`"image"`}},
		{"image datatype", &oip.ModelInferRequest{ModelName: "classifier_image", Inputs: []*inputT{{Name: "image", Datatype: "UINT8", Shape: []int64{3}}},
			RawInputContents: [][]byte{{1, 2, 3}}}, codes.InvalidArgument, []string{`"image"`, "want BYTES"}},
		{"timeout not int64", func() *oip.ModelInferRequest {
			r := tensorReq(good)
			r.Parameters = map[string]*oip.InferParameter{"timeout": {ParameterChoice: &oip.InferParameter_StringParam{StringParam: "1s"}}}
			return r
		}(), codes.InvalidArgument, []string{`"timeout"`}},
		{"version -1", withVersion("-1"), codes.InvalidArgument, []string{"model_version", `"-1"`}},
		{"version over int64", withVersion("99999999999999999999"), codes.InvalidArgument, []string{"model_version", "99999999999999999999"}},
		{"duplicate output", withParams(nil, nil, &outputT{Name: "probabilities"}, &outputT{Name: "probabilities"}),
			codes.InvalidArgument, []string{`output "probabilities"`, "twice"}},
		{"classification output", withParams(nil, nil, &outputT{Name: "probabilities", Parameters: map[string]*oip.InferParameter{"classification": i64(3)}}),
			codes.InvalidArgument, []string{`output "probabilities"`, `"classification"`, "not supported"}},
		{"shared-memory output", withParams(nil, nil, &outputT{Name: "probabilities", Parameters: shm}),
			codes.InvalidArgument, []string{`output "probabilities"`, `"shared_memory_`, "not supported"}},
		{"shared-memory input beside raw contents", withParams(nil, shm), codes.InvalidArgument, []string{`input "images"`, `"shared_memory_`, "not supported"}},
		{"shared-memory input alone", func() *oip.ModelInferRequest { r := withParams(nil, shm); r.RawInputContents = nil; return r }(),
			codes.InvalidArgument, []string{`input "images"`, `"shared_memory_`, "not supported"}},
		{"binary_data_output not a bool", withParams(map[string]*oip.InferParameter{"binary_data_output": str("yes")}, nil),
			codes.InvalidArgument, []string{`"binary_data_output"`, "must be bool, got string"}},
		{"sequence_start not a bool", withParams(map[string]*oip.InferParameter{"sequence_start": i64(1)}, nil),
			codes.InvalidArgument, []string{`"sequence_start"`, "must be bool, got int64"}},
		{"typed contents in another field too", &oip.ModelInferRequest{ModelName: "classifier", Inputs: []*inputT{{Name: "images", Datatype: "UINT8", Shape: []int64{1, 28, 28, 1},
			Contents: &oip.InferTensorContents{UintContents: toUint32(good), Fp32Contents: []float32{1}}}}},
			codes.InvalidArgument, []string{`"images"`, "contents.fp32_contents is set", "contents.uint_contents only"}},
		{"rank over the limit", &oip.ModelInferRequest{ModelName: "classifier", Inputs: []*inputT{{Name: "images", Datatype: "UINT8", Shape: make([]int64, 100_000)}},
			RawInputContents: [][]byte{good}}, codes.InvalidArgument, []string{`"images"`, "100000 dimensions, over 32"}},
		{"BYTES for a tensor model", &oip.ModelInferRequest{ModelName: "classifier", Inputs: []*inputT{{Name: "images", Datatype: "BYTES", Shape: []int64{1}}},
			RawInputContents: [][]byte{prefix(3, "abc")}}, codes.InvalidArgument, []string{`"images"`, `"BYTES", want UINT8`}},
		{"no images", img([]int64{0}, nil), codes.InvalidArgument, []string{`"image"`, "0 images"}},
		{"empty image", img([]int64{1}, prefix(0, "")), codes.InvalidArgument, []string{`input "image": image 0`, "no bytes"}},
		{"huge declared PNG", img([]int64{1}, inference.EncodeBytes([][]byte{pngHeader(100_000, 100_000)})),
			codes.InvalidArgument, []string{`input "image": image 0`, "100000x100000", "limit"}},
	}
}

// pngHeader is a PNG's signature and header chunk declaring w x h grey pixels, and
// no pixels.
func pngHeader(w, h uint32) []byte {
	chunk := append([]byte("IHDR"), binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, w), h)...)
	chunk = append(chunk, 8, 0, 0, 0, 0)
	out := append([]byte("\x89PNG\r\n\x1a\n"), binary.BigEndian.AppendUint32(nil, 13)...)
	return binary.BigEndian.AppendUint32(append(out, chunk...), crc32.ChecksumIEEE(chunk))
}

func TestModelInferRejectsBadInput(t *testing.T) {
	c := serveInference(t)
	good := pixels(1)
	for _, tc := range append(badInferRequests(), oipEdgeRequests()...) {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.ModelInfer(ctxT(t), tc.req)
			if status.Code(err) != tc.code {
				t.Fatalf("got %v, want %v", err, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(status.Convert(err).Message(), w) {
					t.Fatalf("message %q does not contain %q", status.Convert(err).Message(), w)
				}
			}
		})
	}
	// The server is unharmed: a good request still works.
	if _, err := c.ModelInfer(ctxT(t), tensorReq(good)); err != nil {
		t.Fatalf("after the bad requests: %v", err)
	}
}

// TestModelStreamInferAnswersBadRequestsInPlace: on a stream each bad request is
// answered in its place with its id, its code and the field, and the good requests
// around it are answered as usual.
func TestModelStreamInferAnswersBadRequestsInPlace(t *testing.T) {
	stream, err := serveInference(t).ModelStreamInfer(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	bad := append(badInferRequests(), oipEdgeRequests()...)
	for i, tc := range bad {
		tc.req.Id = "bad-" + tc.name
		good := tensorReq(pixels(i))
		good.Id = "good-" + tc.name
		if err := stream.Send(tc.req); err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(good); err != nil {
			t.Fatal(err)
		}
	}
	stream.CloseSend()
	for i, tc := range bad {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if resp.InferResponse.GetId() != tc.req.Id || !strings.HasPrefix(resp.ErrorMessage, tc.code.String()+": ") {
			t.Fatalf("%s: got id %q, error_message %q; want id %q and %v", tc.name, resp.InferResponse.GetId(), resp.ErrorMessage, tc.req.Id, tc.code)
		}
		for _, w := range tc.want {
			if !strings.Contains(resp.ErrorMessage, w) {
				t.Fatalf("%s: error_message %q does not contain %q", tc.name, resp.ErrorMessage, w)
			}
		}
		resp, err = stream.Recv()
		if err != nil || resp.ErrorMessage != "" || resp.InferResponse.GetId() != "good-"+tc.name {
			t.Fatalf("the good request after %s: got %v, %v", tc.name, resp, err)
		}
		if got, want := floats(resp.InferResponse.RawOutputContents[0])[1], float32(pixels(i)[1])/255; got != want {
			t.Fatalf("the good request after %s: class 1 got %v, want %v", tc.name, got, want)
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after the last answer: got %v, want io.EOF", err)
	}
}

// wireCodec sends a *[]byte as it is, so a test can put bytes that are no protobuf
// message on a stream.
type wireCodec struct{}

func (wireCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.(*[]byte); ok {
		return *b, nil
	}
	return proto.Marshal(v.(proto.Message))
}
func (wireCodec) Unmarshal(data []byte, v any) error { return proto.Unmarshal(data, v.(proto.Message)) }
func (wireCodec) Name() string                       { return "proto" }

// TestModelStreamInferUndecodableMessage: bytes that are no ModelInferRequest end
// that stream with an error (grpc-go's own, before the handler sees them), and the
// server goes on serving.
func TestModelStreamInferUndecodableMessage(t *testing.T) {
	conn := serveInferenceConn(t)
	st, err := conn.NewStream(ctxT(t), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true},
		"/inference.GRPCInferenceService/ModelStreamInfer", grpc.ForceCodec(wireCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := proto.Marshal(tensorReq(pixels(1)))
	garbage := []byte{0xff, 0xff, 0xff, 0xff}
	for _, b := range [][]byte{good, good, garbage} {
		if err := st.SendMsg(&b); err != nil {
			t.Fatal(err)
		}
	}
	st.CloseSend()
	for {
		var resp oip.ModelStreamInferResponse
		if err := st.RecvMsg(&resp); err != nil {
			if err == io.EOF {
				t.Fatal("the stream ended cleanly after an undecodable message")
			}
			break
		}
	}
	if _, err := oip.NewGRPCInferenceServiceClient(conn).ModelInfer(ctxT(t), tensorReq(pixels(2))); err != nil {
		t.Fatalf("after the undecodable message: %v", err)
	}
}

// TestModelReadyAndMetadataVersions: a malformed version is INVALID_ARGUMENT naming
// model_version, whether or not the model exists; an unknown model or version is not
// ready (as Triton answers) and NOT_FOUND for metadata.
func TestModelReadyAndMetadataVersions(t *testing.T) {
	c := serveInference(t)
	tests := []struct {
		name, version string
		code          codes.Code // of both RPCs, or of ModelMetadata when ModelReady answers not ready
		want          string
	}{
		{"classifier", "-1", codes.InvalidArgument, `model_version "-1"`},
		{"classifier", "0", codes.InvalidArgument, `model_version "0"`},
		{"classifier", "abc", codes.InvalidArgument, `model_version "abc"`},
		{"classifier_image", "99999999999999999999", codes.InvalidArgument, `model_version "99999999999999999999"`},
		{"nope", "abc", codes.InvalidArgument, `model_version "abc"`},
		{"", "", codes.InvalidArgument, "model name is required"},
		{"classifier", "9", codes.NotFound, "no version 9"},
		{"classifier_image", "9", codes.NotFound, "no version 9"},
		{"nope", "1", codes.NotFound, `"nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name+"@"+tc.version, func(t *testing.T) {
			_, err := c.ModelMetadata(ctxT(t), &oip.ModelMetadataRequest{Name: tc.name, Version: tc.version})
			if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.want) {
				t.Fatalf("ModelMetadata: got %v, want %v containing %q", err, tc.code, tc.want)
			}
			r, err := c.ModelReady(ctxT(t), &oip.ModelReadyRequest{Name: tc.name, Version: tc.version})
			if tc.code == codes.NotFound {
				if err != nil || r.Ready {
					t.Fatalf("ModelReady: got %v, %v, want not ready", r, err)
				}
				return
			}
			if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.want) {
				t.Fatalf("ModelReady: got %v, want %v containing %q", err, tc.code, tc.want)
			}
		})
	}
}

func TestModelInferTimeoutIsADeadline(t *testing.T) {
	c := serveInference(t)
	stuck := pixels(0)
	stuck[0] = 255 // the fake engine waits for the deadline
	req := tensorReq(stuck)
	req.Parameters = map[string]*oip.InferParameter{
		"timeout":     {ParameterChoice: &oip.InferParameter_Int64Param{Int64Param: 50_000}},
		"sequence_id": {ParameterChoice: &oip.InferParameter_Int64Param{Int64Param: 42}},
		"priority":    {ParameterChoice: &oip.InferParameter_Int64Param{Int64Param: 1}},
	}
	if _, err := c.ModelInfer(ctxT(t), req); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("got %v, want DeadlineExceeded after the 50 ms timeout parameter", err)
	}
	ok := tensorReq(pixels(5))
	// The same parameters, but a timeout a loaded machine cannot outlast: with the
	// stuck call's 50 ms this call's own success would be a race against the clock.
	ok.Parameters = map[string]*oip.InferParameter{
		"timeout":     {ParameterChoice: &oip.InferParameter_Int64Param{Int64Param: 10_000_000}},
		"sequence_id": req.Parameters["sequence_id"],
		"priority":    req.Parameters["priority"],
	}
	if _, err := c.ModelInfer(ctxT(t), ok); err != nil {
		t.Fatalf("sequence_id and priority must be tolerated: %v", err)
	}
}

func TestModelStreamInferAnswersInOrderAndCarriesErrors(t *testing.T) {
	c := serveInference(t)
	stream, err := c.ModelStreamInfer(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	for i := range n {
		req := tensorReq(pixels(i))
		if i%7 == 3 {
			req.ModelName = "nope"
		}
		req.Id = string(rune('a'+i%26)) + strings.Repeat("x", i)
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	stream.CloseSend()
	for i := range n {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		wantID := string(rune('a'+i%26)) + strings.Repeat("x", i)
		if resp.InferResponse.GetId() != wantID {
			t.Fatalf("answer %d has id %q, want %q (order)", i, resp.InferResponse.GetId(), wantID)
		}
		if i%7 == 3 {
			if !strings.Contains(resp.ErrorMessage, "NotFound") || !strings.Contains(resp.ErrorMessage, "nope") {
				t.Fatalf("answer %d: error_message %q, want NotFound naming the model", i, resp.ErrorMessage)
			}
			continue
		}
		if resp.ErrorMessage != "" {
			t.Fatalf("answer %d: unexpected error %q", i, resp.ErrorMessage)
		}
		if got, want := floats(resp.InferResponse.RawOutputContents[0])[1], float32(pixels(i)[1])/255; got != want {
			t.Fatalf("answer %d: class 1 got %v, want %v", i, got, want)
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after the last answer: got %v, want io.EOF", err)
	}
}

func TestUnservedRPCsAreUnimplemented(t *testing.T) {
	c := serveInference(t)
	ctx := ctxT(t)
	calls := map[string]func() error{
		"ModelConfig":     func() error { _, err := c.ModelConfig(ctx, &oip.ModelConfigRequest{Name: "classifier"}); return err },
		"ModelStatistics": func() error { _, err := c.ModelStatistics(ctx, &oip.ModelStatisticsRequest{}); return err },
		"SystemSharedMemoryStatus": func() error {
			_, err := c.SystemSharedMemoryStatus(ctx, &oip.SystemSharedMemoryStatusRequest{})
			return err
		},
		"SystemSharedMemoryRegister": func() error {
			_, err := c.SystemSharedMemoryRegister(ctx, &oip.SystemSharedMemoryRegisterRequest{})
			return err
		},
		"SystemSharedMemoryUnregister": func() error {
			_, err := c.SystemSharedMemoryUnregister(ctx, &oip.SystemSharedMemoryUnregisterRequest{})
			return err
		},
		"CudaSharedMemoryStatus": func() error {
			_, err := c.CudaSharedMemoryStatus(ctx, &oip.CudaSharedMemoryStatusRequest{})
			return err
		},
		"CudaSharedMemoryRegister": func() error {
			_, err := c.CudaSharedMemoryRegister(ctx, &oip.CudaSharedMemoryRegisterRequest{})
			return err
		},
		"CudaSharedMemoryUnregister": func() error {
			_, err := c.CudaSharedMemoryUnregister(ctx, &oip.CudaSharedMemoryUnregisterRequest{})
			return err
		},
		"TraceSetting": func() error { _, err := c.TraceSetting(ctx, &oip.TraceSettingRequest{}); return err },
		"LogSettings":  func() error { _, err := c.LogSettings(ctx, &oip.LogSettingsRequest{}); return err },
	}
	for rpc, call := range calls {
		err := call()
		if status.Code(err) != codes.Unimplemented || !strings.Contains(status.Convert(err).Message(), rpc) {
			t.Errorf("%s: got %v, want Unimplemented naming the RPC", rpc, err)
		}
	}
}

// priorityEngine is fakeEngine that records the batching priority of each call.
type priorityEngine struct {
	fakeEngine
	seen chan batching.Priority
}

func (e priorityEngine) Run(ctx context.Context, sig string, in map[string]*tensor.Tensor, out []string) (map[string]*tensor.Tensor, error) {
	e.seen <- batching.PriorityFrom(ctx)
	return e.fakeEngine.Run(ctx, sig, in, out)
}

// TestModelInferPriority checks Triton's priority parameter reaches the batcher: 1,
// 2 and 3 are high, normal and low, as tritonclient (uint64) or as int64; 0 and levels
// past 3 keep the call's own priority (its x-atelier-priority), as Triton falls back to
// the default level; a negative level or another type is INVALID_ARGUMENT.
func TestModelInferPriority(t *testing.T) {
	eng := priorityEngine{seen: make(chan batching.Priority, 1)}
	repo, err := models.NewRepository(classifierModel(t, eng, 1))
	if err != nil {
		t.Fatal(err)
	}
	conn, _ := serve(t, Cores{Inference: &inference.Server{Repo: repo, Prep: &prep.Preparer{Limits: imageio.DefaultLimits}}})
	c := oip.NewGRPCInferenceServiceClient(conn)
	u64 := func(v uint64) *oip.InferParameter {
		return &oip.InferParameter{ParameterChoice: &oip.InferParameter_Uint64Param{Uint64Param: v}}
	}
	i64 := func(v int64) *oip.InferParameter {
		return &oip.InferParameter{ParameterChoice: &oip.InferParameter_Int64Param{Int64Param: v}}
	}
	tests := []struct {
		name   string
		param  *oip.InferParameter // nil: none
		header string              // x-atelier-priority; "" for none
		want   batching.Priority
		err    string
	}{
		{"none", nil, "", batching.Normal, ""},
		{"header only", nil, "low", batching.Low, ""},
		{"uint64 1", u64(1), "low", batching.High, ""},
		{"uint64 2", u64(2), "high", batching.Normal, ""},
		{"uint64 3", u64(3), "", batching.Low, ""},
		{"int64 1", i64(1), "", batching.High, ""},
		{"0 keeps the header's", u64(0), "high", batching.High, ""},
		{"past the last level keeps the header's", u64(7), "low", batching.Low, ""},
		{"negative", i64(-1), "", 0, `parameter "priority" is -1`},
		{"a double", &oip.InferParameter{ParameterChoice: &oip.InferParameter_DoubleParam{DoubleParam: 1}}, "", 0, `parameter "priority" must be uint64 or int64, got double`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tensorReq(pixels(3))
			if tc.param != nil {
				req.Parameters = map[string]*oip.InferParameter{"priority": tc.param}
			}
			ctx := ctxT(t)
			if tc.header != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, PriorityHeader, tc.header)
			}
			_, err := c.ModelInfer(ctx, req)
			if tc.err != "" {
				if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tc.err) {
					t.Fatalf("got %v, want InvalidArgument saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := <-eng.seen; got != tc.want {
				t.Fatalf("the model ran at priority %v, want %v", got, tc.want)
			}
		})
	}
}
