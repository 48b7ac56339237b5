package batching

import (
	"context"
	"time"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/tensor"
)

// work gathers calls from q into batches and runs them until q is closed.
func (e *Engine) work(q *queue) {
	defer e.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
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
		e.runBatch(q, batch)
	}
}

// runBatch drops expired calls, runs the rest as one session run and hands each its
// rows. A panic on the way answers every live call with it instead of ending the
// process.
func (e *Engine) runBatch(q *queue, batch []*call) {
	live := batch[:0]
	var expired int64
	for _, c := range batch {
		e.slots.release()
		if err := c.ctx.Err(); err != nil {
			c.done <- result{err: err}
			expired++
			continue
		}
		live = append(live, c)
	}
	e.stats.add(0, 0, expired, 0)
	if len(live) == 0 {
		return
	}
	results, err := e.compute(q, live)
	for i, c := range live {
		if err != nil {
			c.done <- result{err: err}
			continue
		}
		c.done <- results[i]
	}
}

// compute runs the live calls as one session run and returns each call's rows, or
// the error they all share.
func (e *Engine) compute(q *queue, live []*call) (results []result, err error) {
	defer errkind.Recover(&err)
	inputs, rows := live[0].inputs, live[0].rows
	if len(live) > 1 {
		if inputs, rows, err = stack(live); err != nil {
			return nil, err
		}
	}
	// The run is shared, so no single caller's context may cancel it; each caller
	// stops waiting on its own context.
	out, err := e.inner.Run(context.Background(), q.signature, inputs, q.outputs)
	e.stats.add(1, int64(rows), 0, 0)
	if err != nil {
		return nil, err
	}
	results = make([]result, len(live))
	if len(live) == 1 {
		results[0] = result{out: out}
		return results, nil
	}
	offset := 0
	for i, c := range live {
		part, err := slice(out, offset, c.rows, rows)
		results[i] = result{out: part, err: err}
		offset += c.rows
	}
	return results, nil
}

// stack concatenates the calls' inputs along the batch dimension.
func stack(calls []*call) (map[string]*tensor.Tensor, int, error) {
	rows := 0
	for _, c := range calls {
		rows += c.rows
	}
	out := make(map[string]*tensor.Tensor, len(calls[0].inputs))
	for key, first := range calls[0].inputs {
		shape := append([]int64{int64(rows)}, first.Shape[1:]...)
		t := &tensor.Tensor{DType: first.DType, Shape: shape}
		for _, c := range calls {
			in := c.inputs[key]
			t.Uint8 = append(t.Uint8, in.Uint8...)
			t.Float32 = append(t.Float32, in.Float32...)
			t.Int32 = append(t.Int32, in.Int32...)
			t.Int64 = append(t.Int64, in.Int64...)
		}
		if err := t.Validate(); err != nil {
			return nil, 0, err
		}
		out[key] = t
	}
	return out, rows, nil
}
