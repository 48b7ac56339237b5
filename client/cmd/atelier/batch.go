package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"google.golang.org/grpc/status"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// forEachInOrder runs work(i) for every i in [0, n) on conc goroutines and calls
// emit(i) on the caller's goroutine in order of i, each as soon as 0..i are done.
// work must return promptly once the run's context is done (client calls do).
func forEachInOrder(n, conc int, work func(i int), emit func(i int)) {
	done := make([]chan struct{}, n)
	next := make(chan int, n)
	for i := range n {
		done[i] = make(chan struct{})
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range min(max(conc, 1), n) {
		wg.Go(func() {
			for i := range next {
				work(i)
				close(done[i])
			}
		})
	}
	for i := range n {
		<-done[i]
		emit(i)
	}
	wg.Wait()
}

// modelRef names the model that answered, in JSON output.
type modelRef struct {
	Name    string `json:"name"`
	Version int64  `json:"version"`
}

func refOf(m *pb.ModelSpec) *modelRef {
	if m == nil {
		return nil
	}
	return &modelRef{m.Name, m.Version}
}

// prediction is one category in JSON output.
type prediction struct {
	Label      string  `json:"label"`
	ClassIndex int32   `json:"class_index"`
	Score      float32 `json:"score"`
}

func predictionsOf(c *pb.Classification) []prediction {
	var ps []prediction
	for _, p := range c.GetPredictions() {
		ps = append(ps, prediction{p.Label, p.ClassIndex, p.Score})
	}
	return ps
}

// inputError is why one input failed, in JSON output: a gRPC status name or FILE.
type inputError struct {
	Code    string `json:"code"`
	Message string `json:"message"`

	notSent bool // the batch stopped before this input was sent
}

func (e *inputError) String() string { return e.Code + ": " + e.Message }

func errorOf(err error) *inputError {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		return &inputError{Code: codeName(st.Code()), Message: statusMessage(st)}
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return &inputError{Code: "FILE", Message: err.Error()}
	}
	return &inputError{Code: "ERROR", Message: err.Error()}
}

// runWide are the failures that every later input of a batch would meet too: the
// server cannot be reached, the token is refused, the model or the RPC is unknown, the
// run was interrupted. A batch stops at the first one rather than fail each input.
var runWide = map[string]bool{"UNAVAILABLE": true, "UNAUTHENTICATED": true, "PERMISSION_DENIED": true,
	"NOT_FOUND": true, "UNIMPLEMENTED": true, "CANCELLED": true}

// outcome accounts for a batch's inputs: the failures, and the first run-wide one,
// after which the inputs not sent yet are not sent.
type outcome struct {
	a     *app
	bar   *progress
	total int

	mu   sync.Mutex
	stop *inputError // the first run-wide failure, set by the workers

	failed, notSent int // counted by emit, on the caller's goroutine
}

func newOutcome(a *app, bar *progress, total int) *outcome {
	return &outcome{a: a, bar: bar, total: total}
}

// saw notes a worker's result; a run-wide failure stops the batch.
func (o *outcome) saw(e *inputError) {
	if e == nil || !runWide[e.Code] {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stop == nil {
		o.stop = e
	}
}

// halted returns the error an input gets instead of being sent once the batch has
// stopped (the run's context is done, or a run-wide failure was seen), or nil.
func (o *outcome) halted(ctx context.Context) *inputError {
	if ctx.Err() != nil {
		o.saw(&inputError{Code: "CANCELLED", Message: "interrupted"})
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stop == nil {
		return nil
	}
	return &inputError{Code: o.stop.Code, Message: "not sent after an earlier call failed: " + o.stop.Message, notSent: true}
}

// emit counts one input in output order and prints its failure, unless the failure
// is the run-wide one, which end prints once.
func (o *outcome) emit(input string, e *inputError) {
	switch {
	case e == nil:
		return
	case e.notSent:
		o.notSent++
	case !o.isStop(e):
		o.a.reportFailure(o.bar, input, e)
	}
	o.failed++
}

// isStop reports whether e is the failure that stopped the batch.
func (o *outcome) isStop(e *inputError) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stop != nil && *e == *o.stop
}

// end closes the progress bar, prints the run-wide failure and how many inputs were
// not sent, and returns the batch's result: nil, or a partialError.
func (o *outcome) end() error {
	o.bar.finish()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stop != nil {
		fmt.Fprintf(o.a.env.stderr, "atelier: %s: %s\n", o.a.cmd, cleanCell(o.stop.String()))
	}
	if o.notSent > 0 {
		fmt.Fprintf(o.a.env.stderr, "atelier: %s: stopped: %d of %d inputs not sent\n", o.a.cmd, o.notSent, o.total)
	}
	return tally(o.failed, o.total)
}

// reportFailure prints one failed input on stderr, clearing a progress bar's line.
func (a *app) reportFailure(p *progress, input string, e *inputError) {
	clear := ""
	if p != nil {
		clear = "\r\x1b[K"
	}
	fmt.Fprintf(a.env.stderr, "%satelier: %s: %s: %s\n", clear, a.cmd, cleanCell(input), cleanCell(e.String()))
}

// tally is the outcome of a batch: nil, or a partialError.
func tally(failed, total int) error {
	if failed == 0 {
		return nil
	}
	return partialError{failed, total}
}
