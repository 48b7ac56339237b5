// Package servertest builds the real atelierd and runs it on loopback ports for the
// client, CLI and example tests: one build per test binary, one log file per server,
// health SERVING before a test gets the address.
package servertest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/atelier-vision/atelier/internal/testenv"
)

// Package is the server binary's import path.
const Package = "github.com/atelier-vision/atelier/server/cmd/atelierd"

var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Main runs the tests and examples, then stops the shared server and removes the
// binaries built for them; call it from TestMain: os.Exit(servertest.Main(m)).
//
// Every test and example in a package that calls Main needs a real server. Example
// functions cannot skip, so the rule is explicit and whole-package: when a
// prerequisite is missing (Check), Main runs nothing and says why, and under CI=true
// that is a failure.
func Main(m *testing.M) int {
	flag.Parse()
	if err := Check(); err != nil {
		if testenv.CI() {
			fmt.Fprintf(os.Stderr, "servertest: %v (CI=true: failing)\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "servertest: skipping every test and example in this package: %v\n", err)
		return 0
	}
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Close()
	}
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	return code
}

// Check reports a missing prerequisite without building anything.
func Check() error {
	if !strings.Contains(os.Getenv("CGO_LDFLAGS"), "tensorflow") {
		return &MissingError{"the TensorFlow build flags", "run `. scripts/tfenv.sh` first"}
	}
	_, err := ModelDir()
	return err
}

// Shared returns one server for the whole test binary, started on first use and
// stopped by Main.
func Shared() (*Server, error) {
	shared.once.Do(func() { shared.srv, shared.err = Launch() })
	return shared.srv, shared.err
}

// SharedT is Shared for a test: a missing prerequisite skips (fails under CI=true).
func SharedT(t testing.TB) *Server {
	t.Helper()
	s, err := Shared()
	skipIfMissing(t, err)
	if err != nil {
		t.Fatalf("starting atelierd: %v", err)
	}
	return s
}

// MissingError is a missing prerequisite (a built model, the TensorFlow build flags),
// as opposed to a broken build or server.
type MissingError struct{ What, Fix string }

func (e *MissingError) Error() string { return e.What + " is missing: " + e.Fix }

// skipIfMissing skips t (fails it under CI=true) when err is a MissingError.
func skipIfMissing(t testing.TB, err error) {
	t.Helper()
	var m *MissingError
	if errors.As(err, &m) {
		testenv.Missing(t, m.What, m.Fix)
	}
}

// Binary builds atelierd once per test binary and returns its path.
func Binary() (string, error) {
	build.once.Do(func() {
		if build.err = Check(); build.err != nil {
			return
		}
		build.dir, build.err = os.MkdirTemp("", "atelier-servertest-")
		if build.err != nil {
			return
		}
		bin := filepath.Join(build.dir, "atelierd")
		out, err := exec.Command("go", "build", "-o", bin, Package).CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build %s: %v\n%s", Package, err, out)
			return
		}
		build.bin = bin
	})
	return build.bin, build.err
}

// ModelDir returns the repository's savedmodels folder if the classifier is built.
func ModelDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = filepath.Dir(dir)
	}
	models := filepath.Join(dir, "savedmodels")
	if m, _ := filepath.Glob(filepath.Join(models, "classifier", "*", "saved_model.pb")); len(m) == 0 {
		return "", &MissingError{"the built classifier", "run `make models`"}
	}
	return models, nil
}

// Server is one running atelierd.
type Server struct {
	Addr    string
	LogPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	creds   credentials.TransportCredentials
}

// Launch builds (once) and starts atelierd on a free loopback port with the
// repository's models and extra flags, and waits until it reports SERVING.
func Launch(extra ...string) (*Server, error) {
	return LaunchSecure(insecure.NewCredentials(), extra...)
}

// LaunchSecure is Launch for a server with TLS (--tls-cert in extra): creds are what
// the readiness check connects with.
func LaunchSecure(creds credentials.TransportCredentials, extra ...string) (*Server, error) {
	models, err := ModelDir()
	if err != nil {
		return nil, err
	}
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logf, err := os.CreateTemp("", "atelierd-*.log")
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	args := append([]string{"--listen", addr, "--model-dir", models}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Addr: addr, LogPath: logf.Name(), cmd: cmd, exited: make(chan struct{}), creds: creds}
	go func() { s.waitErr = cmd.Wait(); close(s.exited) }()
	if err := s.waitServing(60 * time.Second); err != nil {
		s.Stop(syscall.SIGKILL)
		log := s.Log()
		os.Remove(s.LogPath)
		return nil, fmt.Errorf("%v\n%s", err, log)
	}
	return s, nil
}

// Start is Launch for a test: a missing model or flag skips (fails under CI=true),
// anything else fails the test; the server is stopped when the test ends.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	return StartSecure(t, insecure.NewCredentials(), extra...)
}

// StartSecure is Start for a server with TLS; creds are the readiness check's.
func StartSecure(t testing.TB, creds credentials.TransportCredentials, extra ...string) *Server {
	t.Helper()
	s, err := LaunchSecure(creds, extra...)
	skipIfMissing(t, err)
	if err != nil {
		t.Fatalf("starting atelierd: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("atelierd %s log:\n%s", s.Addr, s.Log())
		}
		s.Close()
	})
	return s
}

// Close stops the server gracefully and removes its log.
func (s *Server) Close() error {
	err := s.Stop(syscall.SIGTERM)
	os.Remove(s.LogPath)
	return err
}

// Stop sends sig (SIGTERM: graceful; SIGKILL: abrupt) and waits up to 20 s for the
// process to end, killing it then. Stopping a stopped server does nothing.
func (s *Server) Stop(sig syscall.Signal) error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("atelierd %s ignored %v for 20s", s.Addr, sig)
	}
	if sig == syscall.SIGKILL {
		return nil
	}
	return s.waitErr
}

// Log returns everything the server has logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.LogPath)
	return string(b)
}

// Calls counts the calls of method (a full name, /atelier.v1.ClassifyService/Classify)
// that ended with code (OK, Unimplemented, ...), from the server's debug log lines.
func (s *Server) Calls(method, code string) int {
	want := "msg=rpc method=" + method + " code=" + code + " "
	return strings.Count(s.Log(), want)
}

func (s *Server) waitServing(limit time.Duration) error {
	conn, err := grpc.NewClient(s.Addr, grpc.WithTransportCredentials(s.creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	h := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.Status == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("atelierd exited before serving: %v", s.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("atelierd not SERVING after %v (last: %v)", limit, err)
		}
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
