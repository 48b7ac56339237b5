package batching

import (
	"context"
	"time"

	"github.com/atelier-vision/atelier/internal/tf"
)

// work gathers calls from q into batches and runs them until q is closed.
func (e *Engine) work(q *queue) {
	defer e.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var carry *call // a call that did not fit the previous batch
	for {
		first := carry
		carry = nil
		if first == nil {
			var ok bool
			if first, ok = <-q.calls; !ok {
				return
			}
		}
		batch, rows := []*call{first}, first.rows
		timer.Reset(e.cfg.MaxDelay)
	gather:
		for rows < e.cfg.MaxBatch {
			select {
			case c, ok := <-q.calls:
				if !ok {
					break gather
				}
				if rows+c.rows > e.cfg.MaxBatch {
					carry = c
					break gather
				}
				batch, rows = append(batch, c), rows+c.rows
			case <-timer.C:
				break gather
			}
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

// runBatch drops expired calls, runs the rest as one session run and hands each its rows.
func (e *Engine) runBatch(q *queue, batch []*call) {
	live := batch[:0]
	var expired int64
	for _, c := range batch {
		<-e.slots
		if err := c.ctx.Err(); err != nil {
			c.done <- result{err: err}
			expired++
			continue
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		e.stats.add(0, 0, expired, 0)
		return
	}
	inputs, rows := live[0].inputs, live[0].rows
	if len(live) > 1 {
		var err error
		if inputs, rows, err = stack(live); err != nil {
			for _, c := range live {
				c.done <- result{err: err}
			}
			return
		}
	}
	// The run is shared, so no single caller's context may cancel it; each caller
	// stops waiting on its own context.
	out, err := e.inner.Run(context.Background(), q.signature, inputs, q.outputs)
	e.stats.add(1, int64(rows), expired, 0)
	if err != nil || len(live) == 1 {
		for _, c := range live {
			c.done <- result{out: out, err: err}
		}
		return
	}
	offset := 0
	for _, c := range live {
		part, err := slice(out, offset, c.rows, rows)
		c.done <- result{out: part, err: err}
		offset += c.rows
	}
}

// stack concatenates the calls' inputs along the batch dimension.
func stack(calls []*call) (map[string]*tf.Tensor, int, error) {
	rows := 0
	for _, c := range calls {
		rows += c.rows
	}
	out := make(map[string]*tf.Tensor, len(calls[0].inputs))
	for key, first := range calls[0].inputs {
		shape := append([]int64{int64(rows)}, first.Shape[1:]...)
		t := &tf.Tensor{DType: first.DType, Shape: shape}
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
