package server

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/inference"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

// The edges a hostile client or a buggy tritonclient user reaches beyond
// badInferRequests: each is refused with INVALID_ARGUMENT or NOT_FOUND naming the
// field and the limit, on ModelInfer and in place on ModelStreamInfer.
func oipEdgeRequests() []badInfer {
	good := pixels(1)
	with := func(f func(r *oip.ModelInferRequest)) *oip.ModelInferRequest { r := tensorReq(good); f(r); return r }
	typed := func(c *oip.InferTensorContents) func(r *oip.ModelInferRequest) {
		return func(r *oip.ModelInferRequest) { r.RawInputContents, r.Inputs[0].Contents = nil, c }
	}
	img := func(shape []int64, raw []byte) *oip.ModelInferRequest {
		return &oip.ModelInferRequest{ModelName: "classifier_image",
			Inputs: []*inputT{{Name: "image", Datatype: "BYTES", Shape: shape}}, RawInputContents: [][]byte{raw}}
	}
	prefix := func(n uint32, body string) []byte { return append(binary.LittleEndian.AppendUint32(nil, n), body...) }
	i64 := func(v int64) *oip.InferParameter {
		return &oip.InferParameter{ParameterChoice: &oip.InferParameter_Int64Param{Int64Param: v}}
	}
	classification := func(v int64) func(r *oip.ModelInferRequest) {
		return func(r *oip.ModelInferRequest) {
			r.Outputs = []*outputT{{Name: "probabilities", Parameters: map[string]*oip.InferParameter{"classification": i64(v)}}}
		}
	}
	tests := []badInfer{
		// Shapes.
		{"empty shape", with(func(r *oip.ModelInferRequest) { r.Inputs[0].Shape = nil }),
			codes.InvalidArgument, []string{`input "images"`, "rank 0", "rank 4"}},
		{"a 0 beside a huge dimension", with(func(r *oip.ModelInferRequest) {
			r.Inputs[0].Shape = []int64{1 << 62, 0}
			r.RawInputContents = [][]byte{{}}
		}),
			codes.InvalidArgument, []string{`input "images"`, "other than 0 multiply to more than 2147483648"}},
		{"a product past int64", with(func(r *oip.ModelInferRequest) { r.Inputs[0].Shape = []int64{1 << 32, 1 << 32, 1 << 32, 1} }),
			codes.InvalidArgument, []string{`input "images"`, "more than 2147483648 elements"}},
		{"zero-size batch names the input", with(func(r *oip.ModelInferRequest) {
			r.Inputs[0].Shape = []int64{0, 28, 28, 1}
			r.RawInputContents = [][]byte{{}}
		}),
			codes.InvalidArgument, []string{`input "images"`, "[0 28 28 1]", "batch dimension is 0"}},
		{"zero-size batch in typed contents", with(func(r *oip.ModelInferRequest) {
			r.Inputs[0].Shape = []int64{0, 28, 28, 1}
			typed(&oip.InferTensorContents{})(r)
		}), codes.InvalidArgument, []string{`input "images"`, "batch dimension is 0"}},
		{"huge shape, tiny raw data", with(func(r *oip.ModelInferRequest) { r.Inputs[0].Shape = []int64{1 << 20, 28, 28, 1} }),
			codes.InvalidArgument, []string{`input "images"`, "holds 784 bytes, want 822083584"}},
		{"huge shape, tiny typed data", with(func(r *oip.ModelInferRequest) {
			r.Inputs[0].Shape = []int64{1 << 21, 28, 28, 1}
			typed(&oip.InferTensorContents{UintContents: []uint32{1}})(r)
		}), codes.InvalidArgument, []string{`input "images"`, "uint_contents holds 1 elements, want 1644167168"}},
		// Data.
		{"raw one byte short", with(func(r *oip.ModelInferRequest) { r.RawInputContents[0] = good[1:] }),
			codes.InvalidArgument, []string{`input "images"`, "holds 783 bytes, want 784"}},
		{"raw for no inputs", &oip.ModelInferRequest{ModelName: "classifier", RawInputContents: [][]byte{good}},
			codes.InvalidArgument, []string{"raw_input_contents has 1 entries", "(0)"}},
		{"fp32_contents for UINT8", with(typed(&oip.InferTensorContents{Fp32Contents: make([]float32, 784)})),
			codes.InvalidArgument, []string{`input "images"`, "contents.fp32_contents is set", "contents.uint_contents only"}},
		{"int_contents as INT32 for a UINT8 input", with(func(r *oip.ModelInferRequest) {
			r.Inputs[0].Datatype = "INT32"
			typed(&oip.InferTensorContents{IntContents: make([]int32, 784)})(r)
		}), codes.InvalidArgument, []string{`input "images"`, `"INT32", want UINT8`}},
		{"BYTES prefix 2^32-1", img([]int64{1}, prefix(1<<32-1, "abc")), codes.InvalidArgument, []string{`input "image"`, "length prefix 4294967295 runs past the buffer (3 bytes left)"}},
		{"BYTES fewer elements than the shape", img([]int64{3}, inference.EncodeBytes([][]byte{[]byte("a"), []byte("b")})),
			codes.InvalidArgument, []string{`input "image"`, "BYTES element 2", "too few"}},
		{"BYTES more elements than the shape", img([]int64{1}, inference.EncodeBytes([][]byte{[]byte("a"), []byte("b")})),
			codes.InvalidArgument, []string{`input "image"`, "5 bytes left over after 1 BYTES elements"}},
		{"bytes_contents count", &oip.ModelInferRequest{ModelName: "classifier_image", Inputs: []*inputT{{Name: "image", Datatype: "BYTES", Shape: []int64{2},
			Contents: &oip.InferTensorContents{BytesContents: [][]byte{[]byte("x")}}}}}, codes.InvalidArgument, []string{`input "image"`, "bytes_contents holds 1 elements, want 2"}},
		{"framing error before datatype", &oip.ModelInferRequest{ModelName: "classifier", Inputs: []*inputT{{Name: "images", Datatype: "BYTES", Shape: []int64{1, 28, 28, 1}}},
			RawInputContents: [][]byte{good}}, codes.InvalidArgument, []string{`input "images"`, "BYTES element"}},
		// Outputs and parameters.
		{"output with no name", with(func(r *oip.ModelInferRequest) { r.Outputs = []*outputT{{}} }),
			codes.InvalidArgument, []string{`output ""`, "no such output", "probabilities"}},
		{"classification 0", with(classification(0)), codes.InvalidArgument, []string{`output "probabilities"`, `"classification"`, "not supported"}},
		{"classification -1", with(classification(-1)), codes.InvalidArgument, []string{`output "probabilities"`, `"classification"`, "not supported"}},
		{"classification 2^62", with(classification(1 << 62)), codes.InvalidArgument, []string{`output "probabilities"`, `"classification"`, "not supported"}},
		{"binary_data an int", with(func(r *oip.ModelInferRequest) {
			r.Outputs = []*outputT{{Name: "probabilities", Parameters: map[string]*oip.InferParameter{"binary_data": i64(1)}}}
		}), codes.InvalidArgument, []string{`output "probabilities"`, `"binary_data" must be bool, got int64`}},
		{"timeout without a value", with(func(r *oip.ModelInferRequest) { r.Parameters = map[string]*oip.InferParameter{"timeout": {}} }),
			codes.InvalidArgument, []string{`"timeout"`, "int64"}},
		{"timeout past a day", with(func(r *oip.ModelInferRequest) { r.Parameters = map[string]*oip.InferParameter{"timeout": i64(1 << 62)} }),
			codes.InvalidArgument, []string{`"timeout"`, "24 h"}},
		{"timeout negative", with(func(r *oip.ModelInferRequest) { r.Parameters = map[string]*oip.InferParameter{"timeout": i64(-1)} }),
			codes.InvalidArgument, []string{`"timeout" is -1`}},
		// Model names and versions.
		{"version with a space", with(func(r *oip.ModelInferRequest) { r.ModelVersion = " 1" }), codes.InvalidArgument, []string{`model_version " 1"`}},
		{"version in hex", with(func(r *oip.ModelInferRequest) { r.ModelVersion = "0x1" }), codes.InvalidArgument, []string{`model_version "0x1"`}},
		{"version in Arabic-Indic digits", with(func(r *oip.ModelInferRequest) { r.ModelVersion = "٣" }), codes.InvalidArgument, []string{`model_version "٣"`}},
		{"version 0", with(func(r *oip.ModelInferRequest) { r.ModelVersion = "0" }), codes.InvalidArgument, []string{`model_version "0"`, "positive"}},
		{"no model name", with(func(r *oip.ModelInferRequest) { r.ModelName = "" }), codes.InvalidArgument, []string{"model name is required", "classifier_image"}},
		{"only the suffix", with(func(r *oip.ModelInferRequest) { r.ModelName = "_image" }), codes.NotFound, []string{`"_image"`}},
		{"the suffix twice", with(func(r *oip.ModelInferRequest) { r.ModelName = "classifier_image_image" }), codes.NotFound, []string{`"classifier_image_image"`}},
		{"names are case-sensitive", with(func(r *oip.ModelInferRequest) { r.ModelName = "Classifier" }), codes.NotFound, []string{`"Classifier"`}},
		{"a NUL in the name", with(func(r *oip.ModelInferRequest) { r.ModelName = "classifier\x00" }), codes.NotFound, []string{`"classifier\x00"`}},
	}
	for _, dt := range []string{"fp32", "uint8", "FP16", "BF16", "", "UINT8 ", "STRING"} {
		tests = append(tests,
			badInfer{fmt.Sprintf("raw datatype %q", dt), with(func(r *oip.ModelInferRequest) { r.Inputs[0].Datatype = dt }),
				codes.InvalidArgument, []string{`input "images"`, fmt.Sprintf("datatype %q, want UINT8", dt)}},
			badInfer{fmt.Sprintf("typed datatype %q", dt), with(func(r *oip.ModelInferRequest) {
				r.Inputs[0].Datatype = dt
				typed(&oip.InferTensorContents{UintContents: toUint32(good)})(r)
			}), codes.InvalidArgument, []string{`input "images"`, fmt.Sprintf("datatype %q cannot be sent as typed contents", dt)}})
	}
	return tests
}

// TestModelInferLenientButCorrect: what Atelier accepts at the edges is answered
// correctly: a version spelled "+1" or "01" is version 1 (and answered as "1", as
// Triton's integer parse takes it), no outputs or an empty list means all, unknown
// parameters and a priority without a value are ignored, and a 1 MiB id comes back
// as sent.
func TestModelInferLenientButCorrect(t *testing.T) {
	c := serveInference(t)
	tests := []struct {
		name    string
		edit    func(r *oip.ModelInferRequest)
		version string
	}{
		{"version +1", func(r *oip.ModelInferRequest) { r.ModelVersion = "+1" }, "1"},
		{"version 01", func(r *oip.ModelInferRequest) { r.ModelVersion = "01" }, "1"},
		{"no version", func(r *oip.ModelInferRequest) {}, "2"},
		{"an empty outputs list", func(r *oip.ModelInferRequest) { r.Outputs = []*outputT{} }, "2"},
		{"unknown and empty parameters", func(r *oip.ModelInferRequest) {
			r.Parameters = map[string]*oip.InferParameter{"x-custom": {ParameterChoice: &oip.InferParameter_StringParam{StringParam: strings.Repeat("x", 1<<20)}},
				"priority": {}, "nil": nil}
			r.Inputs[0].Parameters = map[string]*oip.InferParameter{"binary_data_size": {}}
		}, "2"},
		{"binary_data", func(r *oip.ModelInferRequest) {
			r.Outputs = []*outputT{{Name: "probabilities", Parameters: map[string]*oip.InferParameter{"binary_data": {ParameterChoice: &oip.InferParameter_BoolParam{BoolParam: false}}}}}
		}, "2"},
		{"a 1 MiB id", func(r *oip.ModelInferRequest) { r.Id = strings.Repeat("é", 1<<19) }, "2"},
	}
	want := float32(pixels(4)[3]) / 255
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tensorReq(pixels(4))
			tc.edit(req)
			resp, err := c.ModelInfer(ctxT(t), req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.ModelVersion != tc.version || resp.Id != req.Id || len(resp.Outputs) != 1 || resp.Outputs[0].Name != "probabilities" {
				t.Fatalf("got version %q, id of %d bytes, outputs %v; want version %s, the id sent and probabilities", resp.ModelVersion, len(resp.Id), resp.Outputs, tc.version)
			}
			if got := floats(resp.RawOutputContents[0])[3]; got != want {
				t.Fatalf("class 3: got %v, want %v", got, want)
			}
		})
	}
}

// TestModelInferLongNamesAreClipped: a 1 MiB input name in a refusal is clipped, so
// the status stays under a client's 8 KiB metadata limit and still names the rule.
func TestModelInferLongNamesAreClipped(t *testing.T) {
	c := serveInference(t)
	req := tensorReq(pixels(1))
	req.Inputs[0].Name = strings.Repeat("n", 1<<20)
	req.Inputs[0].Parameters = map[string]*oip.InferParameter{"shared_memory_region": {}}
	_, err := c.ModelInfer(ctxT(t), req)
	msg := status.Convert(err).Message()
	if status.Code(err) != codes.InvalidArgument || len(msg) > maxStatusMessage || !strings.Contains(msg, "shared_memory_region") || !strings.Contains(msg, "bytes]") {
		t.Fatalf("got %v (%d bytes), want InvalidArgument under %d bytes naming the parameter and the name's length", err, len(msg), maxStatusMessage)
	}
}

// TestModelInferNonUTF8Strings: a proto3 string that is not UTF-8 (model_name, id,
// model_version) is refused by grpc-go's decoder before the handler runs; the call
// fails, nothing echoes the bytes back, and the server goes on.
func TestModelInferNonUTF8Strings(t *testing.T) {
	conn := serveInferenceConn(t)
	for _, field := range []protowire.Number{1, 2, 3} { // model_name, model_version, id
		b, _ := proto.Marshal(tensorReq(pixels(1)))
		b = protowire.AppendTag(b, field, protowire.BytesType)
		b = protowire.AppendBytes(b, []byte("classifier\xff"))
		var resp oip.ModelInferResponse
		err := conn.Invoke(ctxT(t), "/inference.GRPCInferenceService/ModelInfer", &b, &resp, grpc.ForceCodec(wireCodec{}))
		if err == nil || !strings.Contains(status.Convert(err).Message(), "UTF-8") {
			t.Fatalf("field %d not UTF-8: got %v, want a refusal saying UTF-8", field, err)
		}
	}
	if _, err := oip.NewGRPCInferenceServiceClient(conn).ModelInfer(ctxT(t), tensorReq(pixels(2))); err != nil {
		t.Fatalf("after the non-UTF-8 requests: %v", err)
	}
}

// oipEdgeCore is an Inference core for the stream's own behaviour: model "hold"
// waits for release (or the call's end), "bad-utf8" fails with a message that is not
// UTF-8, "panic" panics; any other model answers at once with the name of the first
// output asked for (oipEdgeReq's id) as the output's bytes, padded to size.
type oipEdgeCore struct {
	release chan struct{}
	size    int

	mu                      sync.Mutex
	started, inFlight, most int
	canceled                int
}

func (c *oipEdgeCore) Names() []string { return []string{"hold"} }

func (c *oipEdgeCore) Metadata(string, string) (inference.Metadata, error) {
	return inference.Metadata{}, nil
}

func (c *oipEdgeCore) Infer(ctx context.Context, req inference.Request) (inference.Response, error) {
	switch req.Model {
	case "bad-utf8":
		return inference.Response{}, fmt.Errorf("%w: no such thing as \xff\xfe", errkind.Invalid)
	case "panic":
		panic("the core blew up")
	}
	c.mu.Lock()
	c.started++
	c.inFlight++
	c.most = max(c.most, c.inFlight)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inFlight--
		c.mu.Unlock()
	}()
	if req.Model == "hold" {
		select {
		case <-c.release:
		case <-ctx.Done():
			c.mu.Lock()
			c.canceled++
			c.mu.Unlock()
			return inference.Response{}, ctx.Err()
		}
	}
	raw := []byte(req.Outputs[0])
	if c.size > len(raw) {
		raw = append(raw, make([]byte, c.size-len(raw))...)
	}
	return inference.Response{Model: req.Model, Version: "1",
		Outputs: []inference.Output{{Name: "echo", Datatype: "BYTES", Shape: []int64{1}, Raw: raw}}}, nil
}

func (c *oipEdgeCore) counts() (started, inFlight, most, canceled int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.started, c.inFlight, c.most, c.canceled
}

// oipEdgeReq asks model for an answer carrying id (the core echoes the output name).
func oipEdgeReq(model, id string) *oip.ModelInferRequest {
	return &oip.ModelInferRequest{ModelName: model, Id: id, Outputs: []*outputT{{Name: id}}}
}

// TestModelStreamInferErrorsNeverEndTheStream: an error message that is not UTF-8
// (which would fail the proto3 Send) and a panicking core are each answered in
// error_message, and the answers behind them still come.
func TestModelStreamInferErrorsNeverEndTheStream(t *testing.T) {
	conn, _ := serve(t, Cores{Inference: &oipEdgeCore{}})
	c := oip.NewGRPCInferenceServiceClient(conn)
	if _, err := c.ModelInfer(ctxT(t), oipEdgeReq("panic", "u")); status.Code(err) != codes.Internal {
		t.Fatalf("ModelInfer with a panicking core: got %v, want Internal", err)
	}
	stream, err := c.ModelStreamInfer(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	sent := []struct{ model, id, want string }{
		{"ok", "a", ""}, {"bad-utf8", "b", "InvalidArgument: invalid request: no such thing as \uFFFD"},
		{"ok", "c", ""}, {"panic", "d", "Internal: " + internalMessage}, {"ok", "e", ""},
	}
	for _, s := range sent {
		if err := stream.Send(oipEdgeReq(s.model, s.id)); err != nil {
			t.Fatal(err)
		}
	}
	stream.CloseSend()
	for _, s := range sent {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("answer %s: %v", s.id, err)
		}
		if resp.InferResponse.GetId() != s.id || resp.ErrorMessage != s.want {
			t.Fatalf("answer %s: got id %q, error_message %q; want %q", s.id, resp.InferResponse.GetId(), resp.ErrorMessage, s.want)
		}
		if s.want == "" && string(resp.InferResponse.RawOutputContents[0]) != s.id {
			t.Fatalf("answer %s carries %q", s.id, resp.InferResponse.RawOutputContents[0])
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after the last answer: got %v, want io.EOF", err)
	}
}

// TestModelStreamInferClientThatNeverReads: a client that sends and sends without
// reading gets at most streamWindow requests run at once, and once they can finish
// every request is answered, in order.
func TestModelStreamInferClientThatNeverReads(t *testing.T) {
	core := &oipEdgeCore{release: make(chan struct{})}
	conn, _ := serve(t, Cores{Inference: core})
	stream, err := oip.NewGRPCInferenceServiceClient(conn).ModelStreamInfer(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	sendErr := make(chan error, 1)
	go func() {
		for i := range n {
			if err := stream.Send(oipEdgeReq("hold", fmt.Sprint(i))); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- stream.CloseSend()
	}()
	waitFor(t, func() bool { s, _, _, _ := core.counts(); return s >= streamWindow })
	time.Sleep(100 * time.Millisecond) // room for a request past the window, which must not start
	if started, inFlight, _, _ := core.counts(); started != streamWindow || inFlight != streamWindow {
		t.Fatalf("with every call held: %d started, %d in flight; want %d", started, inFlight, streamWindow)
	}
	close(core.release)
	for i := range n {
		resp, err := stream.Recv()
		if err != nil || resp.ErrorMessage != "" || resp.InferResponse.GetId() != fmt.Sprint(i) {
			t.Fatalf("answer %d: got %v, %v", i, resp, err)
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after the last answer: got %v, want io.EOF", err)
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	if _, _, most, _ := core.counts(); most > streamWindow {
		t.Fatalf("%d calls of one stream ran at once, want at most %d", most, streamWindow)
	}
}

// TestModelStreamInferUnreadAnswersStopTheWork: when a client stops reading large
// answers, the server stops taking its requests once flow control fills: the work
// done is bounded by the window and what the transport holds, not by what was sent.
func TestModelStreamInferUnreadAnswersStopTheWork(t *testing.T) {
	core := &oipEdgeCore{size: 1 << 20}
	conn, _ := serve(t, Cores{Inference: core})
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	stream, err := oip.NewGRPCInferenceServiceClient(conn).ModelStreamInfer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	go func() {
		for i := range n {
			if stream.Send(oipEdgeReq("ok", fmt.Sprint(i))) != nil {
				return
			}
		}
	}()
	// Let the work settle: the count stops rising once the server's Send blocks.
	last := -1
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		s, _, _, _ := core.counts()
		if s == last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the work never settled (%d calls)", s)
		}
		last = s
	}
	// At most: the window's answers waiting to be sent, the one being sent, the one
	// received while the window was full, and what HTTP/2 flow control lets the client
	// transport hold unread (grpc-go's BDP estimate grows it up to 16 MiB, 16 answers).
	if max := 2*streamWindow + 2 + 16; last >= n || last > max {
		t.Fatalf("%d of %d requests ran while no answer was read, want at most %d", last, n, max)
	}
	t.Logf("%d of %d requests ran while no answer was read", last, n)
}

// TestModelStreamInferCancelEndsTheWork: cancelling a stream with held calls cancels
// them all, and the stream's goroutines end.
func TestModelStreamInferCancelEndsTheWork(t *testing.T) {
	core := &oipEdgeCore{release: make(chan struct{})}
	defer close(core.release)
	conn, _ := serve(t, Cores{Inference: core})
	c := oip.NewGRPCInferenceServiceClient(conn)
	if _, err := c.ModelInfer(ctxT(t), oipEdgeReq("ok", "warm")); err != nil { // the connection's own goroutines
		t.Fatal(err)
	}
	g0 := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(ctxT(t))
	stream, err := c.ModelStreamInfer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := stream.Send(oipEdgeReq("hold", fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { s, _, _, _ := core.counts(); return s == 6 })
	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("after cancel: got %v, want Canceled", err)
	}
	waitFor(t, func() bool { _, in, _, canceled := core.counts(); return in == 0 && canceled == 5 })
	waitFor(t, func() bool { return runtime.NumGoroutine() <= g0 })
	if _, err := c.ModelInfer(ctxT(t), oipEdgeReq("ok", "after")); err != nil {
		t.Fatalf("after the cancelled stream: %v", err)
	}
}
