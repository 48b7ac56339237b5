package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// stubServer is a fake Atelier whose Classify and Detect are functions, served on a
// loopback port with the real server's message limit, so that the CLI's batch logic
// can be run without TensorFlow. calls counts the calls received; sizes records each
// Classify request's size in bytes.
type stubServer struct {
	pb.UnimplementedClassifyServiceServer
	pb.UnimplementedDetectServiceServer
	classify func(context.Context, *pb.ClassifyRequest) (*pb.ClassifyResponse, error)
	detect   func(context.Context, *pb.DetectRequest) (*pb.DetectResponse, error)

	calls atomic.Int64
	mu    sync.Mutex
	sizes []int
}

func (s *stubServer) Classify(ctx context.Context, r *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
	s.calls.Add(1)
	s.mu.Lock()
	s.sizes = append(s.sizes, proto.Size(r))
	s.mu.Unlock()
	return s.classify(ctx, r)
}

func (s *stubServer) Detect(ctx context.Context, r *pb.DetectRequest) (*pb.DetectResponse, error) {
	s.calls.Add(1)
	return s.detect(ctx, r)
}

// serveStub serves s on a loopback port until the test ends and returns the address.
func serveStub(t *testing.T, s *stubServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	pb.RegisterClassifyServiceServer(g, s)
	pb.RegisterDetectServiceServer(g, s)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

// answerEach answers every image of a request with one prediction.
func answerEach(_ context.Context, r *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
	resp := &pb.ClassifyResponse{Model: &pb.ModelSpec{Name: "classifier", Version: 1}}
	for range r.Images {
		resp.Classifications = append(resp.Classifications, &pb.Classification{
			Predictions: []*pb.Prediction{{Label: "Dress", ClassIndex: 3, Score: 0.9}}})
	}
	return resp, nil
}

// sparseFiles writes n files of size bytes each (sparse: cheap to make) into a folder.
func sparseFiles(t *testing.T, n int, size int64) string {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("img%05d.png", i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return dir
}

// TestClassifySplitsLargeBatches: five 15 MB photos are within the server's 64 MiB
// request limit one by one but not together; the CLI splits the batch so that every
// request fits, and every photo gets its answer.
func TestClassifySplitsLargeBatches(t *testing.T) {
	s := &stubServer{classify: answerEach}
	addr := serveStub(t, s)
	dir := sparseFiles(t, 5, 15<<20)
	r := atelier(t, addr, "classify", "--output", "json", dir)
	if r.code != exitOK {
		t.Fatalf("exit %d, want 0\nstderr: %s", r.code, r.stderr)
	}
	var results []classifyResult
	mustJSON(t, r.stdout, &results)
	for _, res := range results {
		if res.Error != nil || len(res.Predictions) != 1 {
			t.Errorf("%s: %+v, want one prediction", res.File, res)
		}
	}
	if len(results) != 5 {
		t.Fatalf("got %d results, want 5", len(results))
	}
	for _, n := range s.sizes {
		if n > 64<<20 {
			t.Errorf("a request of %d bytes went out, over the 64 MiB limit", n)
		}
	}
}

// TestBatchStopsAtRunWideFailure: a failure that every later input would meet too (a
// refused token, an unknown model, a server that cannot be reached, an interrupt)
// stops a batch: the inputs not sent yet are not sent, each still appears in the
// output with the error, and stderr says so in one line rather than one per input.
func TestBatchStopsAtRunWideFailure(t *testing.T) {
	refuse := func(code codes.Code) func(context.Context, *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
		return func(context.Context, *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
			return nil, status.Error(code, "refused")
		}
	}
	cases := []struct {
		name     string
		classify func(context.Context, *pb.ClassifyRequest) (*pb.ClassifyResponse, error)
		cmd      string
		wantCode string
	}{
		{"classify, token refused", refuse(codes.Unauthenticated), "classify", "UNAUTHENTICATED"},
		{"classify, unknown model", refuse(codes.NotFound), "classify", "NOT_FOUND"},
		{"detect, token refused", nil, "detect", "UNAUTHENTICATED"},
	}
	dir := sparseFiles(t, 200, 10)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &stubServer{classify: tc.classify, detect: func(context.Context, *pb.DetectRequest) (*pb.DetectResponse, error) {
				return nil, status.Error(codes.Unauthenticated, "refused")
			}}
			addr := serveStub(t, s)
			r := atelier(t, addr, tc.cmd, "--output", "json", "--concurrency", "2", dir)
			checkStopped(t, r, tc.wantCode, 200)
			if n := s.calls.Load(); n > 2 {
				t.Errorf("the server got %d calls after the first refusal; want at most one per worker (2)", n)
			}
		})
	}
	t.Run("classify, server down", func(t *testing.T) {
		r := atelier(t, "127.0.0.1:1", "classify", "--output", "json", "--batch", "4", dir)
		checkStopped(t, r, "UNAVAILABLE", 200)
	})
	t.Run("classify, interrupted", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := &stubServer{classify: func(c context.Context, r *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
			cancel() // the user presses Ctrl-C while the first requests are out
			<-c.Done()
			return nil, c.Err()
		}}
		addr := serveStub(t, s)
		r := atelierCtx(ctx, addr, "classify", "--output", "json", "--batch", "4", dir)
		checkStopped(t, r, "CANCELLED", 200)
	})
}

// checkStopped checks a batch of n inputs stopped at a failure of code: exit 1, every
// input in the JSON output with that code, and a few lines on stderr, not one per input.
func checkStopped(t *testing.T, r ran, code string, n int) {
	t.Helper()
	if r.code != exitError {
		t.Errorf("exit %d, want %d", r.code, exitError)
	}
	var results []struct {
		File  string      `json:"file"`
		Error *inputError `json:"error"`
	}
	mustJSON(t, r.stdout, &results)
	if len(results) != n {
		t.Fatalf("got %d results, want %d", len(results), n)
	}
	for _, res := range results {
		if res.Error == nil || res.Error.Code != code {
			t.Fatalf("%s: error %v, want %s", res.File, res.Error, code)
		}
	}
	if lines := strings.Count(r.stderr, "\n"); lines > 10 {
		t.Errorf("stderr has %d lines for one failure, want a few:\n%.600s", lines, r.stderr)
	}
	if !strings.Contains(r.stderr, "not sent") {
		t.Errorf("stderr does not say which inputs were not sent:\n%.600s", r.stderr)
	}
}

// TestTableStreams: a table's rows print while a batch runs, not once it ends: the
// first file's row is on stdout before the last request reaches the server, and the
// rows stay aligned with the header.
func TestTableStreams(t *testing.T) {
	const files, batch = 200, 4
	var out lockedBuffer
	var early atomic.Bool // the first row was out when the last request came
	s := &stubServer{}
	s.classify = func(ctx context.Context, r *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
		if s.calls.Load() == files/batch {
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if strings.Contains(out.String(), "img00000.png") {
					early.Store(true)
					break
				}
			}
		}
		return answerEach(ctx, r)
	}
	addr := serveStub(t, s)
	dir := sparseFiles(t, files, 10)
	var errOut strings.Builder
	code := run(context.Background(), []string{"classify", "--batch", fmt.Sprint(batch), "--concurrency", "1", dir}, env{
		stdout: &out, stderr: &errOut, stdin: strings.NewReader(""),
		getenv: func(k string) string {
			if k == "ATELIER_ADDR" {
				return addr
			}
			return ""
		},
	})
	if code != exitOK {
		t.Fatalf("exit %d, want 0\nstderr: %s", code, errOut.String())
	}
	if !early.Load() {
		t.Errorf("the first row was not on stdout when the last of %d requests came", files/batch)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 1+files {
		t.Fatalf("got %d lines, want a header and %d rows", len(lines), files)
	}
	col := strings.Index(lines[0], "LABEL")
	for i, line := range lines[1:] {
		if got := strings.Index(line, "Dress"); got != col {
			t.Fatalf("row %d %q has its label at column %d, want %d (the header's)", i+1, line, got, col)
		}
	}
}

// TestTableRowsClearTheProgressBar: on one terminal (stdout and stderr together), a
// table's rows start on lines of their own, not after the progress bar's text.
func TestTableRowsClearTheProgressBar(t *testing.T) {
	addr := serveStub(t, &stubServer{classify: answerEach})
	dir := sparseFiles(t, 100, 10)
	var term lockedBuffer
	code := run(context.Background(), []string{"classify", "--progress", "--batch", "4", dir}, env{
		stdout: &term, stderr: &term, stdin: strings.NewReader(""),
		getenv: func(k string) string {
			if k == "ATELIER_ADDR" {
				return addr
			}
			return ""
		},
	})
	if code != exitOK {
		t.Fatalf("exit %d, want 0\n%s", code, term.String())
	}
	rows := 0
	for _, line := range strings.Split(term.String(), "\n") {
		// What the terminal shows: a carriage return goes back to the line's start,
		// and what is written after it (the erase, then a row) covers the bar.
		shown := strings.ReplaceAll(line[strings.LastIndex(line, "\r")+1:], "\x1b[K", "")
		if strings.Contains(shown, "FILE") || strings.Contains(shown, ".png") {
			rows++
			if strings.Contains(shown, "ETA") {
				t.Fatalf("a row follows the progress bar on its line: %q", line)
			}
		}
	}
	if rows != 1+100 {
		t.Fatalf("the terminal shows %d rows, want a header and 100:\n%s", rows, term.String())
	}
}

// lockedBuffer is a buffer that the CLI writes while a test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// mustJSON decodes the command output s into v.
func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, s)
	}
}
