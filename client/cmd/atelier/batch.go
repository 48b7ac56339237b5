package main

import (
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
}

func (e *inputError) String() string { return e.Code + ": " + e.Message }

func errorOf(err error) *inputError {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		return &inputError{codeName(st.Code()), st.Message()}
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return &inputError{"FILE", err.Error()}
	}
	return &inputError{"ERROR", err.Error()}
}

// reportFailure prints one failed input on stderr, clearing a progress bar's line.
func (a *app) reportFailure(p *progress, input string, e *inputError) {
	clear := ""
	if p != nil {
		clear = "\r\x1b[K"
	}
	fmt.Fprintf(a.env.stderr, "%satelier: %s: %s: %s\n", clear, a.cmd, input, e)
}

// tally is the outcome of a batch: nil, or a partialError.
func tally(failed, total int) error {
	if failed == 0 {
		return nil
	}
	return partialError{failed, total}
}
