package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"runtime/metrics"
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
	"github.com/atelier-vision/atelier/internal/stream"
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
		&pb.GetModelRequest{Model: &pb.ModelSpec{Name: "classifier", Version: 2}},
		&pb.GetModelStatusRequest{Name: "classifier"},
		&pb.LoadModelRequest{Model: &pb.ModelSpec{Name: "classifier", Version: 3}},
		&pb.UnloadModelRequest{Model: &pb.ModelSpec{Name: "classifier", VersionLabel: "stable"}},
		&pb.SetVersionLabelsRequest{Name: "classifier", VersionLabels: map[string]int64{"stable": 3, "canary": 0}},
		&pb.ClassifyStreamConfig{TopK: proto.Int32(1001), Options: &pb.StreamOptions{QueueSize: 4}},
		&oip.ModelMetadataRequest{Name: "classifier", Version: "2"},
		&oip.RepositoryModelLoadRequest{ModelName: "classifier", Parameters: map[string]*oip.ModelRepositoryParameter{
			"version": {ParameterChoice: &oip.ModelRepositoryParameter_StringParam{StringParam: "3"}}}},
		&oip.RepositoryModelUnloadRequest{ModelName: "classifier", Parameters: map[string]*oip.ModelRepositoryParameter{
			"unload_dependents": {ParameterChoice: &oip.ModelRepositoryParameter_BoolParam{BoolParam: true}}}},
	}
	for i, m := range seeds {
		b, _ := proto.Marshal(m)
		f.Add(uint8(i), b)
	}
	// Encoded header bombs in a stream frame: refused before any pixel is allocated.
	for _, bomb := range [][]byte{pngBomb(f), jpegBomb(f)} {
		b, _ := proto.Marshal(&pb.StreamFrame{FrameId: 2, Image: &pb.Image{Data: &pb.Image_Encoded{Encoded: bomb}}})
		f.Add(uint8(6), b)
	}
	core := fakeInferenceCore(f)
	ms := &ModelServer{Repo: core.Repo}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		// The lifecycle RPCs run on a fake control (it accepts any name and version), so
		// what is fuzzed is their own checks: versionSpec, the names, the labels.
		ms.Control = &fakeControl{}
		v2 := &InferenceServer{Core: core, Control: &fakeControl{}}
		switch kind % 16 {
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
			checkStatus(t, "WatchAlertsRequest", watchFilter(&m).Validate())
		case 6:
			var m pb.StreamFrame
			if proto.Unmarshal(data, &m) != nil {
				return
			}
			lim := imageio.Limits{MaxPixels: 1 << 16, MaxSide: 1024}
			var fr stream.Frame
			checkDecodeAlloc(t, "StreamFrame", data, lim.MaxPixels, func() {
				fr = frameFromProto(&m)
				if fr.Err == nil {
					_, fr.Err = fr.Image.Decode(lim)
				}
			})
			checkStatus(t, "StreamFrame", fr.Err)
		case 7:
			var m pb.GetModelRequest
			if proto.Unmarshal(data, &m) != nil {
				return
			}
			_, err := ms.GetModel(ctx, &m)
			checkStatus(t, "GetModelRequest", err)
		case 8:
			var m pb.GetModelStatusRequest
			if proto.Unmarshal(data, &m) != nil {
				return
			}
			_, err := ms.GetModelStatus(ctx, &m)
			checkStatus(t, "GetModelStatusRequest", err)
		case 9:
			var m pb.LoadModelRequest
			if proto.Unmarshal(data, &m) != nil {
				return
			}
			_, err := ms.LoadModel(ctx, &m)
			checkStatus(t, "LoadModelRequest", err)
			checkVersionSpec(t, m.GetModel(), err)
		case 10:
			var m pb.UnloadModelRequest
			if proto.Unmarshal(data, &m) != nil {
				return
			}
			_, err := ms.UnloadModel(ctx, &m)
			checkStatus(t, "UnloadModelRequest", err)
			checkVersionSpec(t, m.GetModel(), err)
		case 11:
			var m pb.SetVersionLabelsRequest
			if proto.Unmarshal(data, &m) != nil {
				return
			}
			_, err := ms.SetVersionLabels(ctx, &m)
			checkStatus(t, "SetVersionLabelsRequest", err)
		case 12:
			var m pb.ClassifyStreamConfig
			if proto.Unmarshal(data, &m) != nil {
				return
			}
			// ClassifyStream's checks of its config, as the handler makes them: the
			// options, then the spec and top_k with a stand-in image.
			_, err := streamOptions(m.GetOptions())
			if err == nil {
				req := classify.Request{Model: specFromProto(m.GetModel()), TopK: classify.DefaultTopK, Images: make([]imageio.Source, 1)}
				if m.TopK != nil {
					req.TopK = int(m.GetTopK())
				}
				err = classify.Validate(req)
				if k := m.GetTopK(); m.TopK != nil && (k < 1 || k > 1000) && err == nil {
					t.Fatalf("top_k %d accepted", k)
				}
			}
			checkStatus(t, "ClassifyStreamConfig", err)
		case 13:
			var m oip.ModelMetadataRequest
			if proto.Unmarshal(data, &m) != nil {
				return
			}
			_, err := v2.ModelMetadata(ctx, &m)
			checkStatus(t, "ModelMetadataRequest", err)
		case 14:
			var m oip.RepositoryModelLoadRequest
			if proto.Unmarshal(data, &m) != nil {
				return
			}
			_, err := v2.RepositoryModelLoad(ctx, &m)
			checkStatus(t, "RepositoryModelLoadRequest", err)
		case 15:
			var m oip.RepositoryModelUnloadRequest
			if proto.Unmarshal(data, &m) != nil {
				return
			}
			_, err := v2.RepositoryModelUnload(ctx, &m)
			checkStatus(t, "RepositoryModelUnloadRequest", err)
		}
	})
}

// checkVersionSpec holds LoadModel and UnloadModel to versionSpec's rule: a name and
// a version number >= 1, never a label. (The fake control accepts the rest.)
func checkVersionSpec(t *testing.T, ps *pb.ModelSpec, err error) {
	t.Helper()
	valid := ps.GetName() != "" && ps.GetVersionLabel() == "" && ps.GetVersion() >= 1
	if valid != (err == nil) {
		t.Fatalf("model spec %v: got %v", ps, err)
	}
}

// The decoding paths are held to the memory their input can legitimately decode to
// (imageio's FuzzDecodeMemory states the bounds in full): a PNG's deflate inflates at
// most 1032 times (8256 one-bit pixels a byte), a JPEG needs a bit for each 8x8 block
// (512 pixels a byte); a raw or tensor input carries its own bytes. Each pixel may
// cost decodeBytesPerPixel along the way, the protobuf copies a few times the input's
// size, and decodeSlack covers decoder state and the call's own small allocations.
const (
	decodeSlack         = 2 << 20
	decodeBytesPerPixel = 32
)

// checkDecodeAlloc runs call and fails when it allocated more than data (the
// request's bytes) can decode to with at most maxPixels pixels an image (0: no cap
// beyond the data's), counted as runtime.MemStats.TotalAlloc counts, through
// runtime/metrics (no stop-the-world).
func checkDecodeAlloc(t *testing.T, what string, data []byte, maxPixels int, call func()) {
	t.Helper()
	perByte := int64(512)
	if bytes.Contains(data, []byte("\x89PNG")) {
		perByte = 8256
	}
	pixels := perByte * int64(len(data))
	if maxPixels > 0 {
		pixels = min(pixels, int64(maxPixels))
	}
	bound := decodeSlack + 16*int64(len(data)) + decodeBytesPerPixel*pixels
	before := heapAllocs()
	call()
	if got := int64(heapAllocs() - before); got > bound {
		t.Fatalf("%s of %d bytes: allocated %d bytes, over the %d it can decode to", what, len(data), got, bound)
	}
}

func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// bombReq asks the image classifier to classify one encoded file.
func bombReq(file []byte) *oip.ModelInferRequest {
	return &oip.ModelInferRequest{ModelName: "classifier_image", Inputs: []*oip.ModelInferRequest_InferInputTensor{{Name: "image", Datatype: "BYTES", Shape: []int64{1}}},
		RawInputContents: [][]byte{inference.EncodeBytes([][]byte{file})}}
}

// pngBomb and jpegBomb are small files whose headers declare 8192x6000 pixels, within
// the server's default limits (imageio.DefaultLimits): only pngCanHold and
// jpegCanHold stop them before the decoder allocates the picture.
func pngBomb(t testing.TB) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	p := buf.Bytes()
	binary.BigEndian.PutUint32(p[16:], 8192)
	binary.BigEndian.PutUint32(p[20:], 6000)
	binary.BigEndian.PutUint32(p[29:], crc32.ChecksumIEEE(p[12:29]))
	return p
}

func jpegBomb(t testing.TB) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	j := buf.Bytes()
	sof := bytes.Index(j, []byte{0xff, 0xc0})
	binary.BigEndian.PutUint16(j[sof+5:], 6000)
	binary.BigEndian.PutUint16(j[sof+7:], 8192)
	return j
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
		bombReq(pngBomb(f)), bombReq(jpegBomb(f)),
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
		// The fake core decodes images at the server's limits (imageio.DefaultLimits):
		// what it allocates is bounded by the request's bytes alone.
		checkDecodeAlloc(t, "ModelInferRequest", data, 0, func() {
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
	})
}
