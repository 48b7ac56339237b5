package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/client"
)

// Exit codes, documented in the package comment and docs/CLIENTS.md.
const (
	exitOK      = 0
	exitError   = 1
	exitUsage   = 2
	exitPartial = 3
)

// env is what the CLI touches of the outside world, so tests can run it in-process.
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	getenv         func(string) string
	stderrTerminal bool
}

// command is one subcommand.
type command struct {
	name, args, summary string
	// flags adds the command's own flags; run does the work once they are parsed.
	flags func(fs *flag.FlagSet) func(ctx context.Context, a *app, args []string) error
}

var commands = []command{
	{"classify", "FILE|DIR|GLOB|- ...", "top categories of images (folders and globs expand to their PNG/JPEG files)", classifyCmd},
	{"detect", "FILE|DIR|GLOB|- ...", "garments in images, each classified; --draw out.png for one image", detectCmd},
	{"generate", "--category NAME", "new designs of a category; --out-dir for the PNGs, --grid out.png for a sheet", generateCmd},
	{"stream", "FILE|DIR|GLOB ...", "send images as one camera's frames on a ClassifyStream (or --detect)", streamCmd},
	{"dashboard", "--camera NAME=SOURCE ...", "the store dashboard: a web page with live cameras, what shoppers wear, alerts and health", dashboardCmd},
	{"models", "", "list the models: every version's state (LOADING .. AVAILABLE, FAILED), policy and labels", modelsCmd},
	{"reload", "", "admin: re-read the model config and rescan the model folder now", reloadCmd},
	{"label", "set MODEL LABEL=VERSION ...", "admin: point version labels (stable, canary) at versions; 0 removes one", labelCmd},
	{"describe", "NAME", "describe one model: versions, signatures, labels", describeCmd},
	{"health", "[SERVICE]", "the server's (or one service's) health; exit 1 unless SERVING", healthCmd},
}

// app is what a command runs with: parsed common flags, the output and the client.
type app struct {
	cmd      string
	env      env
	addr     string
	timeout  time.Duration
	output   string
	tlsCA    string
	tlsCert  string
	tlsKey   string
	token    string
	priority string
	tls      bool
	insecure bool
	progress bool
	client   *client.Client
}

// usageError is a mistake on the command line: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// partialError says how many inputs of a batch failed: exit 3 (or 1 if all did).
type partialError struct{ failed, total int }

func (e partialError) Error() string {
	return fmt.Sprintf("%d of %d inputs failed", e.failed, e.total)
}

// run is the whole CLI: it returns the exit code.
func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		w := e.stderr
		if len(args) > 0 {
			w = e.stdout
		}
		mainUsage(w)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	args = commandFirst(args)
	var cmd *command
	for i := range commands {
		if commands[i].name == args[0] {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(e.stderr, "atelier: unknown command %q (run 'atelier help')\n", args[0])
		return exitUsage
	}
	a := &app{cmd: cmd.name, env: e}
	fs := newFlagSet(a)
	runCmd := cmd.flags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: atelier %s [flags] %s\n\n%s\n\nflags:\n", cmd.name, cmd.args, cmd.summary)
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage // the flag package has printed the problem and the usage
	}
	err = a.check()
	if err == nil {
		err = runCmd(ctx, a, pos)
	}
	if a.client != nil {
		a.client.Close()
	}
	return a.exit(err)
}

// commandFirst moves flags given before the command after it, so that
// `atelier --addr HOST classify x.png` reads as `atelier classify --addr HOST x.png`,
// as users of git, kubectl and docker expect; the command is the first argument that
// names one. Arguments without a command are returned as they are.
func commandFirst(args []string) []string {
	if !strings.HasPrefix(args[0], "-") {
		return args
	}
	for i, arg := range args {
		for _, c := range commands {
			if c.name == arg {
				return slices.Concat([]string{arg}, args[:i], args[i+1:])
			}
		}
	}
	return args
}

// newFlagSet returns a command's flag set with the common flags bound to a.
func newFlagSet(a *app) *flag.FlagSet {
	fs := flag.NewFlagSet("atelier "+a.cmd, flag.ContinueOnError)
	if a.env.stderr != nil {
		fs.SetOutput(a.env.stderr)
	}
	a.commonFlags(fs)
	return fs
}

func (a *app) commonFlags(fs *flag.FlagSet) {
	addr := a.env.getenv("ATELIER_ADDR")
	if addr == "" {
		addr = "localhost:8500"
	}
	fs.StringVar(&a.addr, "addr", addr, "server address; a comma-separated list or a dns:///name:port target balances round-robin [$ATELIER_ADDR]")
	fs.DurationVar(&a.timeout, "timeout", client.DefaultTimeout, "deadline of each call")
	fs.StringVar(&a.output, "output", "table", "output format: table, json or csv")
	fs.StringVar(&a.tlsCA, "tls-ca", "", "connect with TLS, trusting the CA certificates in this PEM file")
	fs.BoolVar(&a.tls, "tls", false, "connect with TLS, trusting the system's CAs")
	fs.StringVar(&a.tlsCert, "tls-cert", "", "present this PEM client certificate (mTLS; implies TLS)")
	fs.StringVar(&a.tlsKey, "tls-key", "", "the PEM private key of --tls-cert")
	fs.StringVar(&a.token, "token", a.env.getenv("ATELIER_TOKEN"), "bearer token sent with every call [$ATELIER_TOKEN]")
	fs.StringVar(&a.priority, "priority", "", "call priority: high, normal or low (default: the server's, normal)")
	fs.BoolVar(&a.insecure, "insecure", false, "allow plaintext to an address that is not loopback")
	fs.BoolVar(&a.progress, "progress", false, "show the progress bar even when stderr is not a terminal")
}

func (a *app) check() error {
	switch a.output {
	case "table", "json", "csv":
	default:
		return usagef("--output must be table, json or csv, not %q", a.output)
	}
	if a.timeout <= 0 {
		return usagef("--timeout must be positive, not %v", a.timeout)
	}
	switch a.priority {
	case "", "high", "normal", "low":
	default:
		return usagef("--priority must be high, normal or low, not %q", a.priority)
	}
	return nil
}

// connect makes the client from the common flags (and a command's extra options).
func (a *app) connect(extra ...client.Option) (*client.Client, error) {
	opts := append([]client.Option{client.WithTimeout(a.timeout)}, extra...)
	switch {
	case a.tlsCA != "" || a.tlsCert != "" || a.tlsKey != "":
		cfg, err := client.TLSConfigFromFiles(a.tlsCA, a.tlsCert, a.tlsKey)
		if err != nil {
			return nil, usagef("--tls-ca/--tls-cert/--tls-key: %v", err)
		}
		opts = append(opts, client.WithTLS(cfg))
	case a.tls:
		opts = append(opts, client.WithTLS(nil))
	}
	if a.token != "" {
		opts = append(opts, client.WithToken(a.token))
	}
	if a.priority != "" {
		opts = append(opts, client.WithPriority(a.priority))
	}
	if a.insecure {
		opts = append(opts, client.WithInsecure())
	}
	c, err := client.New(a.addr, opts...)
	var plain *client.PlaintextError
	if errors.As(err, &plain) {
		return nil, usagef("--addr %s: %s is not a loopback address: use --tls-ca FILE or --tls for TLS, or --insecure to send plaintext on purpose", a.addr, plain.Addr)
	}
	if err != nil {
		return nil, usagef("--addr %s: %v", a.addr, strings.TrimPrefix(err.Error(), "client: "))
	}
	a.client = c
	return c, nil
}

// exit prints err the way scripts can rely on and returns the exit code.
func (a *app) exit(err error) int {
	var ue usageError
	var pe partialError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(a.env.stderr, "atelier: %s: %s (run 'atelier %s -h')\n", a.cmd, ue.msg, a.cmd)
		return exitUsage
	case errors.As(err, &pe):
		fmt.Fprintf(a.env.stderr, "atelier: %s: %s\n", a.cmd, pe)
		if pe.failed < pe.total {
			return exitPartial
		}
		return exitError
	}
	fmt.Fprintf(a.env.stderr, "atelier: %s: %s\n", a.cmd, cleanCell(describeErr(err))) // the server's words, on one line
	return exitError
}

// codedError is a failure that is not a gRPC status but has a name for scripts.
type codedError struct{ code, msg string }

func (e codedError) Error() string { return e.code + ": " + e.msg }

// describeErr renders an error as "CODE: message".
func describeErr(err error) string {
	var ce codedError
	if errors.As(err, &ce) {
		return ce.Error()
	}
	if st, ok := status.FromError(err); ok {
		return codeName(st.Code()) + ": " + statusMessage(st)
	}
	if errors.Is(err, context.Canceled) {
		return "CANCELLED: interrupted"
	}
	var pathErr *os.PathError
	if errors.As(err, &pathErr) {
		return "FILE: " + err.Error()
	}
	return "ERROR: " + err.Error()
}

var canonical = map[codes.Code]string{
	codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN", codes.InvalidArgument: "INVALID_ARGUMENT",
	codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
	codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED", codes.OutOfRange: "OUT_OF_RANGE",
	codes.Unimplemented: "UNIMPLEMENTED", codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE",
	codes.DataLoss: "DATA_LOSS", codes.Unauthenticated: "UNAUTHENTICATED",
}

// codeName is the gRPC status name of c, as grpcurl and the Python client print it.
func codeName(c codes.Code) string {
	if n, ok := canonical[c]; ok {
		return n
	}
	return c.String()
}

// parseInterleaved parses flags wherever they appear among the arguments (before
// "--"), and returns the others in order.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

func mainUsage(w io.Writer) {
	fmt.Fprintln(w, "atelier: the command-line client of the Atelier model server\n\nusage: atelier COMMAND [flags] [args]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, `
Run 'atelier COMMAND -h' for a command's flags. Every command takes --addr
($ATELIER_ADDR, default localhost:8500; a comma-separated list balances round-robin),
--timeout, --output table|json|csv, --tls-ca FILE, --tls and --insecure.

exit codes: 0 ok; 1 error (server, network, file) or every input failed;
            2 usage error; 3 some inputs of a batch failed, others succeeded`)
}
