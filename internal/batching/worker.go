package batching

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/tensor"
)

// work gathers calls from q into batches and runs them until q is closed.
func (e *Engine) work(q *queue) {
	defer e.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	stacked := scratch{}
	for {
		first := q.calls.next(Low, nil)
		if first == nil {
			return
		}
		batch, rows := []*call{first}, first.rows
		timer.Reset(e.cfg.MaxDelay)
	gather:
		for rows < e.cfg.MaxBatch {
			// A batch takes calls of its first call's priority or higher, and stops
			// gathering when only lower ones wait: an interactive call neither waits
			// out the delay nor pays for bulk rows in its run.
			c := q.calls.next(first.priority, timer.C)
			if c == nil {
				break gather
			}
			if rows+c.rows > e.cfg.MaxBatch {
				q.calls.unpop(c) // first in the next batch, unless a higher priority comes
				break gather
			}
			batch, rows = append(batch, c), rows+c.rows
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		e.runBatch(q, batch, stacked)
	}
}

// runBatch drops expired calls, runs the rest as one session run (stacking their
// inputs in the worker's scratch) and hands each its rows. A panic on the way answers
// every live call with it instead of ending the process.
func (e *Engine) runBatch(q *queue, batch []*call, stacked scratch) {
	live := batch[:0]
	var done Counts // this batch's figures, recorded before any live call is answered
	start := time.Now()
	for _, c := range batch {
		e.slots.release()
		if err := c.ctx.Err(); err != nil {
			c.done <- result{err: err}
			done.Expired++
			continue
		}
		live = append(live, c)
		done.Queued += start.Sub(c.queued)
	}
	if len(live) == 0 {
		e.stats.record(done)
		return
	}
	results, rows, err := e.compute(q, live, stacked)
	var alone []Counts // the calls' runs on their own, if the batch's failed
	if rows > 0 {
		done.Runs, done.Rows = 1, int64(rows)
	}
	if err != nil && len(live) > 1 && errors.Is(err, errkind.Invalid) {
		// The model refused a value it cannot know before it runs (a class index past
		// its table, say). The batch holds other callers' calls, which must not fail
		// for a row that is not theirs: run its halves apart, and so on down, so that
		// only the bad calls get the error, in a few runs when few are bad.
		results, err = make([]result, len(live)), nil
		alone = e.computeApart(q, live, stacked, results, nil)
	}
	done.Computed = time.Since(start)
	for i := range live {
		if err != nil || results[i].err != nil {
			done.Failed++
		}
	}
	e.stats.record(done)
	for _, run := range alone {
		e.stats.record(run)
	}
	for i, c := range live {
		if err != nil {
			c.done <- result{err: err}
			continue
		}
		c.done <- results[i]
	}
}

// computeApart runs the two halves of calls as batches of their own, splitting again a
// half that fails for invalid input, and fills results in; it returns the runs'
// figures appended to runs.
func (e *Engine) computeApart(q *queue, calls []*call, stacked scratch, results []result, runs []Counts) []Counts {
	for _, half := range [][]*call{calls[:len(calls)/2], calls[len(calls)/2:]} {
		out, rows, err := e.compute(q, half, stacked)
		if rows > 0 {
			runs = append(runs, Counts{Runs: 1, Rows: int64(rows)})
		}
		part := results[:len(half)]
		results = results[len(half):]
		switch {
		case err != nil && len(half) > 1 && errors.Is(err, errkind.Invalid):
			runs = e.computeApart(q, half, stacked, part, runs)
		case err != nil:
			for i := range part {
				part[i] = result{err: err}
			}
		default:
			copy(part, out)
		}
	}
	return runs
}

// compute runs the live calls as one session run and returns each call's rows, or
// the error they all share; rows is the batch's, or 0 if no session run was made.
func (e *Engine) compute(q *queue, live []*call, stacked scratch) (results []result, rows int, err error) {
	defer errkind.Recover(&err)
	inputs, rows := live[0].inputs, live[0].rows
	if len(live) > 1 {
		if inputs, rows, err = stacked.stack(live); err != nil {
			return nil, 0, err
		}
	}
	// The run is shared, so no single caller's context may cancel it; each caller
	// stops waiting on its own context.
	out, err := e.inner.Run(context.Background(), q.signature, inputs, q.outputs)
	if err != nil {
		return nil, rows, err
	}
	results = make([]result, len(live))
	if len(live) == 1 {
		results[0] = result{out: out}
		return results, rows, nil
	}
	offset := 0
	for i, c := range live {
		part, err := slice(out, offset, c.rows, rows)
		results[i] = result{out: part, err: err}
		offset += c.rows
	}
	return results, rows, nil
}

// scratch is one worker's stacked inputs, kept from batch to batch. An engine reads
// its inputs only while it runs (tensor.Engine's contract), so every batch of a queue
// stacks into the same memory instead of allocating a batch's worth of input, which
// was a fifth of the server's garbage per request on the embedded classifier.
type scratch map[string]*tensor.Tensor

// maxScratchBytes bounds what a worker keeps between batches per input; a larger
// batch stacks into memory of its own, left to the collector.
const maxScratchBytes = 64 << 20

// stack concatenates the calls' inputs along the batch dimension into s. The result
// is valid until the next stack.
func (s scratch) stack(calls []*call) (map[string]*tensor.Tensor, int, error) {
	rows := 0
	for _, c := range calls {
		rows += c.rows
	}
	out := make(map[string]*tensor.Tensor, len(calls[0].inputs))
	for key, first := range calls[0].inputs {
		n := 0
		for _, c := range calls {
			n += c.inputs[key].Len()
		}
		t := s[key] // a worker serves one queue: its inputs' keys and dtypes never change
		if t == nil {
			t = &tensor.Tensor{DType: first.DType}
		}
		// A fresh shape: an engine may hand it back in its outputs.
		t.Shape = append([]int64{int64(rows)}, first.Shape[1:]...)
		switch first.DType {
		case tensor.Uint8:
			t.Uint8 = concat(t.Uint8, n, calls, key, func(t *tensor.Tensor) []uint8 { return t.Uint8 })
		case tensor.Float32:
			t.Float32 = concat(t.Float32, n, calls, key, func(t *tensor.Tensor) []float32 { return t.Float32 })
		case tensor.Int32:
			t.Int32 = concat(t.Int32, n, calls, key, func(t *tensor.Tensor) []int32 { return t.Int32 })
		case tensor.Int64:
			t.Int64 = concat(t.Int64, n, calls, key, func(t *tensor.Tensor) []int64 { return t.Int64 })
		}
		if err := t.Validate(); err != nil {
			return nil, 0, err
		}
		if len(t.Bytes()) <= maxScratchBytes {
			s[key] = t
		} else {
			delete(s, key)
		}
		out[key] = t
	}
	return out, rows, nil
}

// concat copies every call's elements of input key into buf, grown to n elements.
func concat[E any](buf []E, n int, calls []*call, key string, elems func(*tensor.Tensor) []E) []E {
	buf = slices.Grow(buf[:0], n)
	for _, c := range calls {
		buf = append(buf, elems(c.inputs[key])...)
	}
	return buf
}
