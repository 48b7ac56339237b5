package server

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/atelier-vision/atelier/internal/classify"
	"github.com/atelier-vision/atelier/internal/detect"
	"github.com/atelier-vision/atelier/internal/generate"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/inference"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
	oip "github.com/atelier-vision/atelier/proto/triton"
)

// checkStatus holds every validation error to the API's rules: it maps to a status
// through the one table (never Internal) and its message stays bounded.
func checkStatus(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	st := status.Convert(toStatus(err))
	if _, internal := err.(*internalError); internal || st.Code().String() == "Internal" {
		t.Fatalf("%s: validation error %q maps to Internal", what, err)
	}
	if n := len(st.Message()); n > maxStatusMessage+64 {
		t.Fatalf("%s: status message of %d bytes", what, n)
	}
}

// FuzzRequests feeds protobuf bytes to every RPC's request conversion and validation:
// kind picks the request type. Nothing may panic; every error is a request error of
// bounded size.
func FuzzRequests(f *testing.F) {
	img := &pb.Image{Data: &pb.Image_Raw{Raw: &pb.RawImage{Rgb: make([]byte, 12), Width: 2, Height: 2}}}
	seeds := []proto.Message{
		&pb.ClassifyRequest{Images: []*pb.Image{img}},
		&pb.DetectRequest{Image: img},
		&pb.GenerateRequest{Category: "Dress", Count: 2, Seed: 7},
		&pb.InterpolateRequest{Steps: 4},
		&pb.DetectStreamConfig{},
		&pb.WatchAlertsRequest{CameraIds: []string{"a"}},
		&pb.StreamFrame{FrameId: 1, Image: img},
	}
	for i, m := range seeds {
		b, _ := proto.Marshal(m)
		f.Add(uint8(i), b)
	}
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		switch kind % 7 {
		case 0:
			var m pb.ClassifyRequest
			if proto.Unmarshal(data, &m) != nil {
				return
			}
			req, err := classifyRequest(&m)
			if err == nil {
				err = classify.Validate(req)
			}
			checkStatus(t, "ClassifyRequest", err)
		case 1:
			var m pb.DetectRequest
			if proto.Unmarshal(data, &m) != nil {
				return
			}
			req, err := detectRequest(&m)
			if err == nil {
				err = detect.Validate(req)
			}
			checkStatus(t, "DetectRequest", err)
		case 2:
			var m pb.GenerateRequest
			if proto.Unmarshal(data, &m) != nil {
				return
			}
			checkStatus(t, "GenerateRequest", generate.Validate(generate.Request{
				Model: specFromProto(m.GetModel()), Category: m.GetCategory(), Count: int(m.GetCount()),
				Seed: m.GetSeed(), Latents: latentsFromProto(m.GetLatents()),
			}))
		case 3:
			var m pb.InterpolateRequest
			if proto.Unmarshal(data, &m) != nil {
				return
			}
			req, err := interpolateRequest(&m)
			if err == nil {
				err = generate.ValidateInterpolate(req)
			}
			checkStatus(t, "InterpolateRequest", err)
		case 4:
			var m pb.DetectStreamConfig
			if proto.Unmarshal(data, &m) != nil {
				return
			}
			_, err := detectStreamRequest(&m)
			checkStatus(t, "DetectStreamConfig", err)
		case 5:
			var m pb.WatchAlertsRequest
			if proto.Unmarshal(data, &m) != nil {
				return
			}
			// WatchAlerts checks only the filter's size, in its handler.
			_ = max(len(m.GetCameraIds()), len(m.GetRules())) > maxWatchFilter
		case 6:
			var m pb.StreamFrame
			if proto.Unmarshal(data, &m) != nil {
				return
			}
			fr := frameFromProto(&m)
			if fr.Err == nil {
				_, fr.Err = fr.Image.Decode(imageio.Limits{MaxPixels: 1 << 16, MaxSide: 1024})
			}
			checkStatus(t, "StreamFrame", fr.Err)
		}
	})
}

// FuzzStreamOptions feeds StreamOptions bytes (frame policy, queue, windows and alert
// rules) to their conversion and validation. An out-of-range queue_size is reported
// as the value sent.
func FuzzStreamOptions(f *testing.F) {
	for _, o := range []*pb.StreamOptions{
		{QueueSize: 8, Policy: pb.FramePolicy_FRAME_POLICY_LATEST},
		{QueueSize: 1_000_000},
		{AlertRules: []*pb.AlertRule{{Name: "coat", Categories: []string{"Coat"}, MinScore: 0.5, MinConsecutiveFrames: 2}}},
	} {
		b, _ := proto.Marshal(o)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m pb.StreamOptions
		if proto.Unmarshal(data, &m) != nil {
			return
		}
		o, err := streamOptions(&m)
		if err == nil {
			err = o.Validate()
		}
		checkStatus(t, "StreamOptions", err)
		if err != nil && strings.HasPrefix(err.Error(), "invalid request: queue_size ") {
			if want := "queue_size " + strconv.FormatUint(uint64(m.GetQueueSize()), 10) + " "; !strings.Contains(err.Error(), want) {
				t.Fatalf("queue_size %d reported as %q", m.GetQueueSize(), err)
			}
		}
		if err == nil {
			o = o.WithDefaults()
			if o.QueueSize < 1 || len(o.Rules) != len(m.GetAlertRules()) {
				t.Fatalf("valid options with defaults %+v", o)
			}
		}
	})
}

// FuzzModelInferRequest feeds ModelInferRequest bytes to the V2 conversion and the
// real inference core (a fake classifier and its image model): nothing may panic, and
// every error is a request error of bounded size.
func FuzzModelInferRequest(f *testing.F) {
	s := &InferenceServer{Core: fakeInferenceCore(f)}
	typed := tensorReq(pixels(2))
	typed.Inputs[0].Contents, typed.RawInputContents = &oip.InferTensorContents{UintContents: toUint32(pixels(2))}, nil
	params := tensorReq(pixels(3))
	params.Parameters = map[string]*oip.InferParameter{"timeout": {ParameterChoice: &oip.InferParameter_Int64Param{Int64Param: 1000}}}
	params.Outputs = []*oip.ModelInferRequest_InferRequestedOutputTensor{{Name: "probabilities"}}
	for _, m := range []*oip.ModelInferRequest{
		tensorReq(pixels(1)), typed, params,
		{ModelName: "classifier_image", Inputs: []*oip.ModelInferRequest_InferInputTensor{{Name: "image", Datatype: "BYTES", Shape: []int64{2}}},
			RawInputContents: [][]byte{inference.EncodeBytes([][]byte{[]byte("not a png"), {}})}},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m oip.ModelInferRequest
		if proto.Unmarshal(data, &m) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond) // the fake engine waits on a 255 pixel
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := s.infer(ctx, &m)
			done <- err
		}()
		select {
		case err := <-done:
			checkStatus(t, "ModelInferRequest", err)
		case <-time.After(5 * time.Second):
			t.Fatalf("the call outlived its 20 ms deadline by 5 s")
		}
	})
}
