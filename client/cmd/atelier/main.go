// Command atelier is the command-line client of Atelier, the gRPC model server for
// fashion vision. It is built only on the client library (package client).
//
//	atelier classify [flags] FILE|DIR|GLOB|- ...   top categories of images
//	atelier detect   [flags] FILE ...              garments in images (--draw out.png)
//	atelier generate [flags] --category NAME       new designs (--out-dir, --grid out.png)
//	atelier stream   [flags] FILE|DIR|GLOB ...     images as one camera's video stream
//	atelier dashboard --camera NAME=SOURCE ...     the store dashboard, a web page
//	atelier models                                 the loaded models
//	atelier describe NAME                          one model's versions, signatures, labels
//	atelier health   [SERVICE]                     the server's health
//
// Every command takes --addr (or $ATELIER_ADDR; default localhost:8500; a comma-separated
// list, or a dns:///name:port target such as a headless Service, balances round-robin
// over the servers that are SERVING), --timeout, --output table|json|csv, --tls-ca
// FILE, --tls and --insecure. Results go to stdout, messages and the progress bar to
// stderr.
//
// Exit codes: 0 everything succeeded; 1 an error (the server's, the network's, a
// file's), or every input failed; 2 a usage error; 3 some inputs of a batch failed and
// others succeeded. An error line on stderr reads "atelier: COMMAND: CODE: message",
// where CODE is the gRPC status name (UNAVAILABLE, INVALID_ARGUMENT, UNIMPLEMENTED,
// ...) or FILE for a local file problem.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first interrupt cancels the run; a second one kills the process, as if
	// unhandled. A run can block where no context reaches it: opening a FIFO no one
	// writes, reading a terminal's stdin.
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], env{
		stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin,
		getenv: os.Getenv, stderrTerminal: isTerminal(os.Stderr),
	})
	stop()
	os.Exit(code)
}

// isTerminal reports whether f is a character device (a terminal, not a file or pipe).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
