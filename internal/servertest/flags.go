package servertest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/atelier-vision/atelier/internal/testenv"
)

// The checks of deployment manifests against the binary (deploy/kubernetes,
// deploy/kserve): atelierd's flags as --help lists them, and container args read
// back as flags.

var help struct {
	once  sync.Once
	flags map[string]string // flag name -> its ATELIER_* variable
	err   error
	out   string
}

var (
	flagName = regexp.MustCompile(`^  -([a-z0-9-]+)`)
	flagEnv  = regexp.MustCompile(`\[\$(ATELIER_[A-Z0-9_]+)\]`)
)

// Flags builds atelierd (once per test binary) and reads its flags, each with its
// ATELIER_* variable, from `atelierd --help`.
func Flags(t testing.TB) map[string]string {
	t.Helper()
	if !strings.Contains(os.Getenv("CGO_LDFLAGS"), "tensorflow") {
		testenv.Missing(t, "the TensorFlow build flags", "run `. scripts/tfenv.sh` first")
	}
	help.once.Do(func() {
		dir, err := os.MkdirTemp("", "atelier-flags-")
		if err != nil {
			help.err = err
			return
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "atelierd")
		out, err := exec.Command("go", "build", "-o", bin, Package).CombinedOutput()
		if err != nil {
			help.err, help.out = err, string(out)
			return
		}
		out, _ = exec.Command(bin, "--help").CombinedOutput() // exits 2 after the usage
		help.out = string(out)
		help.flags = map[string]string{}
		name := ""
		for _, line := range strings.Split(help.out, "\n") {
			if m := flagName.FindStringSubmatch(line); m != nil {
				name, help.flags[m[1]] = m[1], ""
			}
			if m := flagEnv.FindStringSubmatch(line); m != nil && name != "" {
				help.flags[name] = m[1]
			}
		}
	})
	if help.err != nil {
		t.Fatalf("building atelierd: %v\n%s", help.err, help.out)
	}
	if len(help.flags) < 10 || help.flags["listen"] != "ATELIER_LISTEN" {
		t.Fatalf("read %d flags %v from atelierd --help, want --listen among them:\n%s", len(help.flags), help.flags, help.out)
	}
	return help.flags
}

// ParseArgs reads --name=value and --name value arguments; a bare --name is "true".
func ParseArgs(t testing.TB, args []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			t.Fatalf("argument %q is not a flag: atelierd takes none", a)
		}
		name, value, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !ok {
			value = "true"
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				value, i = args[i+1], i+1
			}
		}
		out[name] = value
	}
	return out
}

// PortOf returns the port of a host:port flag value such as --listen=:8500.
func PortOf(t testing.TB, flag, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("--%s=%q is not host:port", flag, addr)
	}
	return int32(n)
}

// PodArgs turns a manifest container's args into flags for a test server on
// loopback: --listen and --model-dir are left out (Start picks a free port and the
// built models), --metrics-listen becomes metrics, and rewrite, if it has the flag,
// maps any other flag's value (a file path in the pod, say, to one in the test).
func PodArgs(t testing.TB, args []string, metrics string, rewrite map[string]func(string) string) []string {
	t.Helper()
	var out []string
	for name, value := range ParseArgs(t, args) {
		switch name {
		case "listen", "model-dir":
			continue
		case "metrics-listen":
			value = metrics
		default:
			if f, ok := rewrite[name]; ok {
				value = f(value)
			}
		}
		out = append(out, "--"+name+"="+value)
	}
	return out
}

// FreeLoopback returns a 127.0.0.1 address with a port free at the time of the call.
func FreeLoopback(t testing.TB) string {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
