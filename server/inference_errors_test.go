package server

import (
	"encoding/binary"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	oip "github.com/atelier-vision/atelier/proto/triton"
)

type inputT = oip.ModelInferRequest_InferInputTensor

func TestModelInferRejectsBadInput(t *testing.T) {
	c := serveInference(t)
	good := pixels(1)
	img := func(shape []int64, raw []byte) *oip.ModelInferRequest {
		return &oip.ModelInferRequest{ModelName: "classifier_image",
			Inputs: []*inputT{{Name: "image", Datatype: "BYTES", Shape: shape}}, RawInputContents: [][]byte{raw}}
	}
	prefix := func(n uint32, body string) []byte { return append(binary.LittleEndian.AppendUint32(nil, n), body...) }
	tests := []struct {
		name string
		req  *oip.ModelInferRequest
		code codes.Code
		want []string // in the message
	}{
		{"unknown model", &oip.ModelInferRequest{ModelName: "nope"}, codes.NotFound, []string{"nope", "classifier"}},
		{"unknown version", func() *oip.ModelInferRequest { r := tensorReq(good); r.ModelVersion = "9"; return r }(), codes.NotFound, []string{"no version 9"}},
		{"bad version", func() *oip.ModelInferRequest { r := tensorReq(good); r.ModelVersion = "x"; return r }(), codes.InvalidArgument, []string{"model_version"}},
		{"unknown input", &oip.ModelInferRequest{ModelName: "classifier", Inputs: []*inputT{{Name: "pixels", Datatype: "UINT8", Shape: []int64{1, 28, 28, 1}}}, RawInputContents: [][]byte{good}},
			codes.InvalidArgument, []string{`"pixels"`, "no such input"}},
		{"missing input", &oip.ModelInferRequest{ModelName: "classifier"}, codes.InvalidArgument, []string{`"images"`, "missing"}},
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
		{"image not decodable", img([]int64{1}, prefix(3, "abc")), codes.InvalidArgument, []string{"image 0"}},
		{"too many images", img([]int64{65}, nil), codes.InvalidArgument, []string{`"image"`}},
		{"image datatype", &oip.ModelInferRequest{ModelName: "classifier_image", Inputs: []*inputT{{Name: "image", Datatype: "UINT8", Shape: []int64{3}}},
			RawInputContents: [][]byte{{1, 2, 3}}}, codes.InvalidArgument, []string{`"image"`, "want BYTES"}},
		{"timeout not int64", func() *oip.ModelInferRequest {
			r := tensorReq(good)
			r.Parameters = map[string]*oip.InferParameter{"timeout": {ParameterChoice: &oip.InferParameter_StringParam{StringParam: "1s"}}}
			return r
		}(), codes.InvalidArgument, []string{`"timeout"`}},
	}
	for _, tc := range tests {
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
	ok.Parameters = req.Parameters
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
