package main

// The CLI against messy inputs and a broken or hostile server: files that never end,
// names that are not text, answers that break the protocol, a closed pipe, a full
// disk, an interrupt while a read blocks.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/internal/testenv"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// edgeServer is a fake Atelier whose RPCs are functions (nil: UNIMPLEMENTED), served
// on a loopback port whose connections the test can cut (drop).
type edgeServer struct {
	pb.UnimplementedClassifyServiceServer
	pb.UnimplementedGenerateServiceServer
	pb.UnimplementedModelServiceServer
	classify    func(context.Context, *pb.ClassifyRequest) (*pb.ClassifyResponse, error)
	stream      func(pb.ClassifyService_ClassifyStreamServer) error
	generate    func(context.Context, *pb.GenerateRequest) (*pb.GenerateResponse, error)
	interpolate func(*pb.InterpolateRequest, pb.GenerateService_InterpolateServer) error
	getModel    func(context.Context, *pb.GetModelRequest) (*pb.GetModelResponse, error)
	status      func(context.Context, *pb.GetModelStatusRequest) (*pb.GetModelStatusResponse, error)

	calls   atomic.Int64
	streams atomic.Int64
	mu      sync.Mutex
	conns   []net.Conn
}

func (s *edgeServer) Classify(ctx context.Context, r *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
	s.calls.Add(1)
	return s.classify(ctx, r)
}

func (s *edgeServer) ClassifyStream(st pb.ClassifyService_ClassifyStreamServer) error {
	s.streams.Add(1)
	return s.stream(st)
}

func (s *edgeServer) Generate(ctx context.Context, r *pb.GenerateRequest) (*pb.GenerateResponse, error) {
	s.calls.Add(1)
	return s.generate(ctx, r)
}

func (s *edgeServer) Interpolate(r *pb.InterpolateRequest, st pb.GenerateService_InterpolateServer) error {
	s.calls.Add(1)
	return s.interpolate(r, st)
}

func (s *edgeServer) GetModel(ctx context.Context, r *pb.GetModelRequest) (*pb.GetModelResponse, error) {
	s.calls.Add(1)
	return s.getModel(ctx, r)
}

func (s *edgeServer) GetModelStatus(ctx context.Context, r *pb.GetModelStatusRequest) (*pb.GetModelStatusResponse, error) {
	s.calls.Add(1)
	return s.status(ctx, r)
}

// drop cuts every connection the server has accepted, as a crashed server's kernel
// does: the client sees the connection close mid-call.
func (s *edgeServer) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

// edgeListener records the connections it accepts, for drop.
type edgeListener struct {
	net.Listener
	s *edgeServer
}

func (l edgeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.s.mu.Lock()
		l.s.conns = append(l.s.conns, c)
		l.s.mu.Unlock()
	}
	return c, err
}

// serveEdge serves s until the test ends and returns its address. The server sends
// messages up to 1 GiB: a hostile server is not bound by the real one's limits.
func serveEdge(t *testing.T, s *edgeServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.MaxRecvMsgSize(64<<20), grpc.MaxSendMsgSize(1<<30))
	pb.RegisterClassifyServiceServer(g, s)
	pb.RegisterGenerateServiceServer(g, s)
	pb.RegisterModelServiceServer(g, s)
	go g.Serve(edgeListener{lis, s})
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

// runEdge runs the CLI in-process with its own stdin and stdout (nil: empty, and a
// buffer that becomes ran.stdout).
func runEdge(ctx context.Context, addr string, stdin io.Reader, stdout io.Writer, args ...string) ran {
	var out, errOut bytes.Buffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	if stdout == nil {
		stdout = &out
	}
	code := run(ctx, args, env{stdout: stdout, stderr: &errOut, stdin: stdin,
		getenv: func(k string) string {
			if k == "ATELIER_ADDR" {
				return addr
			}
			return ""
		}})
	return ran{code, out.String(), errOut.String()}
}

// allocated runs f and returns the bytes it allocated on the heap (the whole
// process's, so a little more).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// zeros is an endless stream of zero bytes, as /dev/zero or `yes` on stdin.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestEdgeInputFiles: inputs that are not plain small image files fail as their own
// input with FILE, quickly and without being read whole; the others still get answers.
func TestEdgeInputFiles(t *testing.T) {
	s := &edgeServer{classify: answerEach}
	addr := serveEdge(t, s)
	img := pngBytes(t, 4, 4)

	t.Run("a file whose name reads as a glob", func(t *testing.T) {
		dir := t.TempDir()
		name := filepath.Join(dir, "photo [1].png") // as a browser names a second download
		os.WriteFile(name, img, 0o644)
		r := runEdge(context.Background(), addr, nil, nil, "classify", "--output", "json", name)
		if r.code != exitOK || !strings.Contains(r.stdout, "photo [1].png") {
			t.Fatalf("exit %d, want 0 with the file classified\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
	})

	tooBig := []struct {
		name  string
		input func(t *testing.T) (arg string, stdin io.Reader)
	}{
		{"a 2 GiB file", func(t *testing.T) (string, io.Reader) {
			name := filepath.Join(t.TempDir(), "huge.png")
			f, err := os.Create(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(2 << 30); err != nil { // sparse: no disk used
				t.Fatal(err)
			}
			return name, nil
		}},
		{"/dev/zero", func(t *testing.T) (string, io.Reader) {
			if _, err := os.Stat("/dev/zero"); err != nil {
				testenv.Missing(t, "/dev/zero", "a Linux /dev")
			}
			return "/dev/zero", nil
		}},
		{"stdin without end", func(*testing.T) (string, io.Reader) { return "-", zeros{} }},
	}
	for _, tc := range tooBig {
		t.Run(tc.name, func(t *testing.T) {
			arg, stdin := tc.input(t)
			before := s.calls.Load()
			var r ran
			start := time.Now()
			alloc := allocated(func() { r = runEdge(context.Background(), addr, stdin, nil, "classify", "--output", "json", arg) })
			took := time.Since(start)
			if r.code != exitError || !strings.Contains(r.stdout, `"code": "FILE"`) || !strings.Contains(r.stdout, "over the 66060288-byte limit of one image") {
				t.Fatalf("exit %d, want 1 with a FILE error naming the limit\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			if n := s.calls.Load() - before; n != 0 {
				t.Errorf("the server got %d calls for an input that cannot fit a request", n)
			}
			// At most one request's worth is read (and its buffer grown once).
			if alloc > 300<<20 || took > 10*time.Second {
				t.Errorf("refusing the input allocated %d MiB and took %v; want under 300 MiB and 10s", alloc>>20, took)
			}
		})
	}

	t.Run("a folder with a symlink loop, a looping folder link, a FIFO and a device", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "a.png"), img, 0o644)
		os.Symlink("loop.png", filepath.Join(dir, "loop.png"))
		os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
		os.Symlink("..", filepath.Join(dir, "sub", "up")) // not followed: no endless walk
		// Skipped: opening a FIFO no one writes blocks, and /dev/zero never ends.
		syscall.Mkfifo(filepath.Join(dir, "camera.png"), 0o600)
		os.Symlink("/dev/zero", filepath.Join(dir, "zero.png"))
		r := runEdge(context.Background(), addr, nil, nil, "classify", "--output", "json", dir)
		var results []classifyResult
		mustJSON(t, r.stdout, &results)
		if r.code != exitPartial || len(results) != 2 || results[0].Error != nil || results[1].Error == nil ||
			results[1].Error.Code != "FILE" || !strings.Contains(results[1].Error.Message, "too many levels of symbolic links") {
			t.Fatalf("exit %d, results %+v; want 3 with a.png answered and loop.png a FILE error\nstderr: %s", r.code, results, r.stderr)
		}
	})
}

// hostile are texts a server or a file name may carry: a newline that would forge a
// row, ESC sequences that recolour the terminal, retitle its window and clear its
// screen, BEL, a bidirectional override that shows text reversed.
var hostile = []string{
	"Dress\nFORGED ROW  1.0000",
	"Coat\x1b[31m red\x1b]0;PWNED\x07",
	"Shirt\x1b[2J\u202egnp.exe",
}

// noControls fails the test if what a terminal is shown holds a control character or
// a bidirectional override.
func noControls(t *testing.T, what, s string) {
	t.Helper()
	for _, bad := range []string{"\x1b", "\x07", "\u202e", "\r"} {
		if strings.Contains(s, bad) {
			t.Errorf("%s holds %q:\n%q", what, bad, s)
		}
	}
}

// TestEdgeTableIsSafeForTerminals: labels and error messages from the server and file
// names with control characters or bytes that are not UTF-8 are shown escaped in a
// table and on stderr, one row per line; JSON and CSV carry them unchanged.
func TestEdgeTableIsSafeForTerminals(t *testing.T) {
	s := &edgeServer{}
	s.classify = func(_ context.Context, r *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
		for _, img := range r.Images {
			if len(img.GetEncoded()) == 1 { // the file that fails
				return nil, status.Error(codes.InvalidArgument, "bad image\x1b]0;PWNED\x07\nFORGED LINE")
			}
		}
		resp := &pb.ClassifyResponse{Model: &pb.ModelSpec{Name: "classifier", Version: 1}}
		for range r.Images {
			var ps []*pb.Prediction
			for i, l := range hostile {
				ps = append(ps, &pb.Prediction{Label: l, ClassIndex: int32(i), Score: 0.5})
			}
			resp.Classifications = append(resp.Classifications, &pb.Classification{Predictions: ps})
		}
		return resp, nil
	}
	s.status = func(context.Context, *pb.GetModelStatusRequest) (*pb.GetModelStatusResponse, error) {
		return &pb.GetModelStatusResponse{Models: []*pb.ModelStatus{{Name: hostile[1], Policy: hostile[0],
			Versions: []*pb.VersionStatus{{Version: 1, Error: hostile[2]}}}}}, nil
	}
	s.getModel = func(context.Context, *pb.GetModelRequest) (*pb.GetModelResponse, error) {
		return &pb.GetModelResponse{Model: &pb.ModelInfo{Name: hostile[1], Versions: []*pb.ModelVersion{{Version: 1, Labels: hostile,
			Signatures: []*pb.Signature{{Name: hostile[0], Inputs: []*pb.TensorSpec{{Name: hostile[2], Dtype: "DT_UINT8"}}}}}}}}, nil
	}
	addr := serveEdge(t, s)

	dir := t.TempDir()
	names := []string{"nl\nname.png", "esc\x1b]0;T\x07.png", "bytes\xff\xfe.png", "=cmd|'-C calc'!A0.png", "broken.png"}
	for _, n := range names[:4] {
		if err := os.WriteFile(filepath.Join(dir, n), pngBytes(t, 4, 4), 0o644); err != nil {
			testenv.Missing(t, fmt.Sprintf("a file system that takes the name %q", n), err.Error())
		}
	}
	os.WriteFile(filepath.Join(dir, "broken.png"), []byte{0}, 0o644)

	table := runEdge(context.Background(), addr, nil, nil, "classify", "--top-k", "3", dir)
	if table.code != exitPartial {
		t.Fatalf("exit %d, want 3 (one file refused)\nstderr: %q", table.code, table.stderr)
	}
	noControls(t, "the table", table.stdout)
	noControls(t, "stderr", table.stderr)
	if lines := strings.Count(table.stdout, "\n"); lines != 1+len(names) {
		t.Errorf("the table has %d lines, want a header and %d rows:\n%s", lines, len(names), table.stdout)
	}
	for _, want := range []string{`nl\nname.png`, `esc\x1b]0;T\a.png`, `bytes\xff\xfe.png`, `Dress\nFORGED ROW`, `\x1b[31m red`, `\u202egnp.exe`} {
		if !strings.Contains(table.stdout, want) {
			t.Errorf("the table lacks %s, escaped:\n%s", want, table.stdout)
		}
	}
	if !strings.Contains(table.stderr, `bad image\x1b]0;PWNED\a\nFORGED LINE`) {
		t.Errorf("stderr lacks the refusal, escaped, on one line:\n%s", table.stderr)
	}

	// CSV and JSON are for programs: the exact bytes, quoted by their own rules.
	c := runEdge(context.Background(), addr, nil, nil, "classify", "--top-k", "3", "--output", "csv", dir)
	rows, err := csv.NewReader(strings.NewReader(c.stdout)).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v\n%s", err, c.stdout)
	}
	seen := map[string]bool{}
	for _, r := range rows[1:] {
		seen[r[0]], seen[r[2]] = true, true
	}
	for _, want := range append(hostile, filepath.Join(dir, names[0]), filepath.Join(dir, names[2]), filepath.Join(dir, names[3])) {
		if !seen[want] {
			t.Errorf("CSV lacks %q exactly; it has %q", want, rows)
		}
	}
	j := runEdge(context.Background(), addr, nil, nil, "classify", "--top-k", "3", "--output", "json", dir)
	var results []classifyResult
	mustJSON(t, j.stdout, &results)
	if len(results) != len(names) || results[0].Predictions[0].Label != hostile[0] {
		t.Errorf("JSON: %+v, want %d results with the labels unchanged", results, len(names))
	}

	m := runEdge(context.Background(), addr, nil, nil, "models")
	noControls(t, "models' table", m.stdout)
	noControls(t, "models' stderr", m.stderr)
	if m.code != exitOK || strings.Count(m.stdout, "\n") != 2 || !strings.Contains(m.stderr, `Shirt\x1b[2J\u202egnp.exe`) {
		t.Errorf("models: exit %d, want 0, a header and one row, and the version's error escaped\nstdout: %s\nstderr: %s", m.code, m.stdout, m.stderr)
	}
	d := runEdge(context.Background(), addr, nil, nil, "describe", "x")
	noControls(t, "describe", d.stdout)
	if d.code != exitOK || !strings.Contains(d.stdout, `Coat\x1b[31m red`) {
		t.Errorf("describe: exit %d, want 0 with the name escaped:\n%s", d.code, d.stdout)
	}
}

// TestEdgeBrokenAnswers: answers that leave out what the protocol promises fail
// with a message, never a crash.
func TestEdgeBrokenAnswers(t *testing.T) {
	s := &edgeServer{}
	s.classify = func(_ context.Context, r *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
		resp := &pb.ClassifyResponse{} // no model named
		for range r.Images {
			resp.Classifications = append(resp.Classifications, &pb.Classification{Predictions: []*pb.Prediction{{Label: "Dress", Score: 0.9}}})
		}
		return resp, nil
	}
	s.getModel = func(context.Context, *pb.GetModelRequest) (*pb.GetModelResponse, error) {
		return &pb.GetModelResponse{}, nil // no model
	}
	steps := 0 // how many steps Interpolate sends; 0: one without an image
	s.interpolate = func(_ *pb.InterpolateRequest, st pb.GenerateService_InterpolateServer) error {
		if steps == 0 {
			return st.Send(&pb.InterpolateResponse{Step: 0})
		}
		for i := range steps {
			if err := st.Send(&pb.InterpolateResponse{Step: uint32(i), Image: &pb.GeneratedImage{Png: []byte{1}}}); err != nil {
				return err
			}
		}
		return nil
	}
	addr := serveEdge(t, s)
	img := filepath.Join(t.TempDir(), "a.png")
	os.WriteFile(img, pngBytes(t, 4, 4), 0o644)

	for _, format := range []string{"table", "csv", "json"} {
		r := runEdge(context.Background(), addr, nil, nil, "classify", "--output", format, img)
		if r.code != exitOK || !strings.Contains(r.stdout, "Dress") {
			t.Errorf("classify --output %s of an answer naming no model: exit %d, want 0\nstdout: %s\nstderr: %s", format, r.code, r.stdout, r.stderr)
		}
	}
	r := runEdge(context.Background(), addr, nil, nil, "describe", "classifier")
	if r.code != exitError || !strings.Contains(r.stderr, "INTERNAL: the server answered GetModel classifier without a model") {
		t.Errorf("describe of an empty answer: exit %d, want 1 with INTERNAL\nstderr: %s", r.code, r.stderr)
	}
	r = runEdge(context.Background(), addr, nil, nil, "generate", "--category", "Dress", "--steps", "3")
	if r.code != exitError || !strings.Contains(r.stderr, "INTERNAL: the server sent step 0 without an image") {
		t.Errorf("interpolate step without an image: exit %d, want 1 with INTERNAL\nstderr: %s", r.code, r.stderr)
	}
	steps = 1000
	r = runEdge(context.Background(), addr, nil, nil, "generate", "--category", "Dress", "--steps", "3")
	if r.code != exitError || !strings.Contains(r.stderr, "INTERNAL: the server sent more than the 3 steps asked for") {
		t.Errorf("interpolate past its steps: exit %d, want 1 with INTERNAL\nstderr: %s", r.code, r.stderr)
	}
}

// pngClaiming is a small PNG whose header claims w x h pixels: as a 1 MB PNG of
// 30000x30000 blank pixels does, at no cost to the test.
func pngClaiming(t *testing.T, w, h uint32) []byte {
	b := pngBytes(t, 1, 1)
	binary.BigEndian.PutUint32(b[16:], w) // IHDR's data follows the signature, length and type
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// TestEdgeGridOfHugeDesign: a design whose PNG claims 30000x30000 pixels is refused
// from its header, before gigabytes are decoded and tiled.
func TestEdgeGridOfHugeDesign(t *testing.T) {
	bomb := pngClaiming(t, 30000, 30000)
	s := &edgeServer{generate: func(context.Context, *pb.GenerateRequest) (*pb.GenerateResponse, error) {
		return &pb.GenerateResponse{Images: []*pb.GeneratedImage{{Png: bomb, Category: "Dress", Seed: 1}}}, nil
	}}
	addr := serveEdge(t, s)
	sheet := filepath.Join(t.TempDir(), "sheet.png")
	var r ran
	alloc := allocated(func() {
		r = runEdge(context.Background(), addr, nil, nil, "generate", "--category", "Dress", "--grid", sheet)
	})
	if r.code != exitError || !strings.Contains(r.stderr, "--grid "+sheet+": the sheet would be 30004x30004 pixels, over the limit") {
		t.Fatalf("exit %d, want 1 with the sheet refused\nstderr: %s", r.code, r.stderr)
	}
	if alloc > 200<<20 {
		t.Errorf("refusing the sheet allocated %d MiB, want under 200", alloc>>20)
	}
	if _, err := os.Stat(sheet); err == nil {
		t.Errorf("%s was written", sheet)
	}
}

// TestEdgeFullDisk: output that cannot be written (a full disk) ends the run with exit
// 1 and the error, in every format; a file written cut short is not left behind.
func TestEdgeFullDisk(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		testenv.Missing(t, "/dev/full", err.Error())
	}
	defer full.Close()
	s := &edgeServer{classify: answerEach,
		status: func(context.Context, *pb.GetModelStatusRequest) (*pb.GetModelStatusResponse, error) {
			return &pb.GetModelStatusResponse{Models: []*pb.ModelStatus{{Name: "classifier"}}}, nil
		},
		generate: func(context.Context, *pb.GenerateRequest) (*pb.GenerateResponse, error) {
			return &pb.GenerateResponse{Images: []*pb.GeneratedImage{{Png: pngBytes(t, 28, 28), Category: "Dress", Seed: 1}}}, nil
		}}
	addr := serveEdge(t, s)
	img := filepath.Join(t.TempDir(), "a.png")
	os.WriteFile(img, pngBytes(t, 4, 4), 0o644)

	for _, args := range [][]string{
		{"classify", img}, {"classify", "--output", "csv", img}, {"classify", "--output", "json", img},
		{"models"}, {"generate", "--category", "Dress"},
	} {
		r := runEdge(context.Background(), addr, nil, full, args...)
		if r.code != exitError || !strings.Contains(r.stderr, "no space left on device") {
			t.Errorf("%v > /dev/full: exit %d, want 1 with the error\nstderr: %s", args, r.code, r.stderr)
		}
	}
	r := runEdge(context.Background(), addr, nil, nil, "generate", "--category", "Dress", "--grid", "/dev/full")
	if fi, err := os.Stat("/dev/full"); r.code != exitError || !strings.Contains(r.stderr, "--grid /dev/full: write /dev/full: no space left on device") ||
		err != nil || fi.Mode()&os.ModeDevice == 0 {
		t.Errorf("--grid /dev/full: exit %d, want 1 with the error and /dev/full left alone (%v)\nstderr: %s", r.code, err, r.stderr)
	}

	t.Run("--out-dir on a full tmpfs", func(t *testing.T) {
		dir := t.TempDir()
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
			testenv.Missing(t, "a tmpfs mount (root)", fmt.Sprintf("%v %s", err, out))
		}
		t.Cleanup(func() { exec.Command("umount", dir).Run() })
		fill, _ := os.Create(filepath.Join(dir, "fill"))
		io.Copy(fill, io.LimitReader(zeros{}, 1<<20)) // until the disk is full
		fill.Close()
		out := filepath.Join(dir, "designs")
		for _, args := range [][]string{{"--out-dir", out}, {"--grid", filepath.Join(dir, "sheet.png")}} {
			r := runEdge(context.Background(), addr, nil, nil, append([]string{"generate", "--category", "Dress"}, args...)...)
			if r.code != exitError || !strings.Contains(r.stderr, "FILE: ") || !strings.Contains(r.stderr, "no space left on device") {
				t.Errorf("generate %v on a full disk: exit %d, want 1 with a FILE error\nstderr: %s", args, r.code, r.stderr)
			}
		}
		left, _ := filepath.Glob(filepath.Join(dir, "*.png"))
		designs, _ := filepath.Glob(filepath.Join(out, "*"))
		if len(left)+len(designs) > 0 {
			t.Errorf("files cut short were left behind: %v %v", left, designs)
		}
	})
}

// echoFrames answers every frame of a ClassifyStream with its id, in order, until the
// client's frames end.
func echoFrames(st pb.ClassifyService_ClassifyStreamServer) error {
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if f := m.GetFrame(); f != nil {
			if err := sendResult(st, f.FrameId); err != nil {
				return err
			}
		}
	}
}

func sendResult(st pb.ClassifyService_ClassifyStreamServer, id uint64) error {
	return st.Send(&pb.ClassifyStreamResponse{Message: &pb.ClassifyStreamResponse_Result{Result: &pb.ClassifyFrameResult{
		FrameId: id, Classification: &pb.Classification{Predictions: []*pb.Prediction{{Label: "Dress", Score: 0.9}}}}}})
}

// recvFrames reads the config and n frames, returning their ids.
func recvFrames(st pb.ClassifyService_ClassifyStreamServer, n int) ([]uint64, error) {
	var ids []uint64
	for len(ids) < n {
		m, err := st.Recv()
		if err != nil {
			return ids, err
		}
		if f := m.GetFrame(); f != nil {
			ids = append(ids, f.FrameId)
		}
	}
	return ids, nil
}

// TestEdgeStreamBrokenServer: a stream server that answers frames never sent, ends
// early, answers out of order or loses its connection mid-stream: the CLI neither
// crashes nor calls a stream with unanswered frames a success.
func TestEdgeStreamBrokenServer(t *testing.T) {
	dir := t.TempDir()
	for i := range 3 {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.png", i)), pngBytes(t, 4, 4), 0o644)
	}
	cases := []struct {
		name     string
		stream   func(s *edgeServer) func(pb.ClassifyService_ClassifyStreamServer) error
		wantCode int
		stderr   string
		results  int // result rows in the CSV
	}{
		{"a frame id never sent, then UNAVAILABLE", func(s *edgeServer) func(pb.ClassifyService_ClassifyStreamServer) error {
			return func(st pb.ClassifyService_ClassifyStreamServer) error {
				if s.streams.Load() > 1 {
					return echoFrames(st)
				}
				recvFrames(st, 1)
				sendResult(st, math.MaxUint64) // would resume at file -1
				return status.Error(codes.Unavailable, "going away")
			}
		}, exitOK, "reconnecting from frame 1", 4},
		{"ends with frames unanswered", func(*edgeServer) func(pb.ClassifyService_ClassifyStreamServer) error {
			return func(st pb.ClassifyService_ClassifyStreamServer) error {
				recvFrames(st, 1)
				return sendResult(st, 999) // a frame never sent, then a clean end
			}
		}, exitError, "INTERNAL: the server ended the stream without answering frames 1..3", 1},
		{"answers out of order", func(*edgeServer) func(pb.ClassifyService_ClassifyStreamServer) error {
			return func(st pb.ClassifyService_ClassifyStreamServer) error {
				ids, err := recvFrames(st, 3)
				if err != nil {
					return err
				}
				for _, i := range []int{2, 0, 1} {
					sendResult(st, ids[i])
				}
				return nil
			}
		}, exitOK, "", 3},
		{"the connection drops mid-stream", func(s *edgeServer) func(pb.ClassifyService_ClassifyStreamServer) error {
			return func(st pb.ClassifyService_ClassifyStreamServer) error {
				if s.streams.Load() > 1 {
					return echoFrames(st)
				}
				ids, _ := recvFrames(st, 2)
				sendResult(st, ids[0])
				time.Sleep(50 * time.Millisecond) // the answer reaches the client
				s.drop()
				<-st.Context().Done()
				return nil
			}
		}, exitOK, "UNAVAILABLE", 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &edgeServer{}
			s.stream = tc.stream(s)
			addr := serveEdge(t, s)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r := runEdge(ctx, addr, nil, nil, "stream", "--output", "csv", "--reconnect", "5s", dir)
			if r.code != tc.wantCode || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d, want %d with %q on stderr\nstdout: %s\nstderr: %s", r.code, tc.wantCode, tc.stderr, r.stdout, r.stderr)
			}
			rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
			if err != nil || len(rows)-1 != tc.results {
				t.Fatalf("%d result rows (%v), want %d:\n%s", len(rows)-1, err, tc.results, r.stdout)
			}
			if tc.wantCode == exitOK {
				answered := map[string]int{}
				for _, row := range rows[1:] {
					answered[row[1]]++
				}
				for _, id := range []string{"1", "2", "3"} {
					if answered[id] != 1 {
						t.Errorf("frame %s answered %d times, want once: %v", id, answered[id], answered)
					}
				}
			}
		})
	}
}

// TestEdgeRetryAfterOfCenturies: a rate-limit refusal that asks for a wait past the
// range of a time.Duration is final, not retried every 10 ms until the deadline.
func TestEdgeRetryAfterOfCenturies(t *testing.T) {
	s := &edgeServer{classify: func(ctx context.Context, _ *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
		grpc.SetTrailer(ctx, metadata.Pairs("retry-after-ms", strconv.FormatInt(math.MaxInt64, 10)))
		return nil, status.Error(codes.ResourceExhausted, "rate limit exceeded")
	}}
	addr := serveEdge(t, s)
	img := filepath.Join(t.TempDir(), "a.png")
	os.WriteFile(img, pngBytes(t, 4, 4), 0o644)
	start := time.Now()
	r := runEdge(context.Background(), addr, nil, nil, "classify", "--timeout", "2s", img)
	if r.code != exitError || !strings.Contains(r.stderr, "RESOURCE_EXHAUSTED") || s.calls.Load() != 1 || time.Since(start) > time.Second {
		t.Fatalf("exit %d after %d calls in %v, want 1 after one call at once\nstderr: %s", r.code, s.calls.Load(), time.Since(start), r.stderr)
	}
}

// TestEdgeBinary runs the built CLI where a process's own signals and file
// descriptors matter: stdout a pipe closed early, an interrupt while a read blocks.
func TestEdgeBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "atelier")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := serveEdge(t, &edgeServer{classify: answerEach})
	dir := sparseFiles(t, 2000, 10)

	t.Run("stdout closed early, as by head -1", func(t *testing.T) {
		cmd := exec.Command(bin, "classify", "--batch", "1", "--concurrency", "1", dir)
		cmd.Env = append(os.Environ(), "ATELIER_ADDR="+addr)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		out.Close()
		start := time.Now()
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err = <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatal("still running 10s after its stdout closed")
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGPIPE && ee.ExitCode() != exitError {
			t.Errorf("ended with %v, want SIGPIPE (a shell's 141) or exit 1", err)
		}
		if stderr.Len() > 0 {
			t.Errorf("stderr after the pipe closed, want nothing:\n%s", stderr.String())
		}
		t.Logf("exited %v after stdout closed: %v", time.Since(start).Round(time.Millisecond), err)
	})

	t.Run("a second interrupt while a FIFO's open blocks", func(t *testing.T) {
		fifo := filepath.Join(t.TempDir(), "camera.png")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			testenv.Missing(t, "mkfifo", err.Error())
		}
		cmd := exec.Command(bin, "classify", fifo) // no one writes: the open blocks
		cmd.Env = append(os.Environ(), "ATELIER_ADDR="+addr)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		time.Sleep(300 * time.Millisecond)
		for range 2 { // Ctrl-C, and again
			cmd.Process.Signal(os.Interrupt)
			time.Sleep(200 * time.Millisecond)
		}
		select {
		case err := <-exited:
			t.Logf("exited: %v", err)
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Fatal("still running 5s after a second interrupt")
		}
	})
}
