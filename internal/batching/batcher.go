package batching

import (
	"context"
	"errors"
	"strconv"

	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/atelier-vision/atelier/internal/errkind"

	"github.com/atelier-vision/atelier/internal/tensor"
)

// ErrQueueFull marks a call refused because the model's queue is full.
var ErrQueueFull = errkind.New(errkind.Overloaded, "model queue is full")

// Config sets one model's batching.
type Config struct {
	// MaxBatch is the most rows (examples) in one session run; 1 turns batching off.
	MaxBatch int
	// MaxDelay is how long the first call of a batch waits for more.
	MaxDelay time.Duration
	// QueueSize is how many calls may wait; more are refused with ErrQueueFull.
	QueueSize int
	// Workers is how many session runs of the model may run at once.
	Workers int
}

// DefaultConfig is the configuration chosen from the measurements in docs/BENCHMARKS.md.
var DefaultConfig = Config{MaxBatch: 32, MaxDelay: 2 * time.Millisecond, QueueSize: 256, Workers: 1}

// Validate checks the configuration's ranges.
func (c Config) Validate() error {
	if c.MaxBatch < 1 || c.QueueSize < 1 || c.Workers < 1 || c.MaxDelay < 0 {
		return fmt.Errorf("batching: max batch, queue size and workers must be >= 1 and max delay >= 0, got %+v", c)
	}
	return nil
}

// Engine batches Run calls onto the engine underneath (a TensorFlow session in
// production). It is itself a tensor.Engine.
type Engine struct {
	inner  tensor.Engine
	cfg    Config
	slots  slots // the calls queued, bounding the queue
	mu     sync.Mutex
	queues map[string]*queue
	closed bool
	wg     sync.WaitGroup
	// Stats, read by tests and metrics.
	stats Stats
}

// Stats counts what the engine did. A batch adds its figures in one step, before
// any of its callers is answered, so a caller that has its answer sees them.
type Stats struct {
	mu     sync.Mutex
	counts Counts
}

// Counts are an engine's figures at one moment.
type Counts struct {
	// Runs are the session runs (batches), Rows the examples they ran.
	Runs, Rows int64
	// Expired calls left or ran out of time while queued; Refused found the queue
	// full; Failed were answered with an error by their batch (stacking the inputs,
	// the session run, or slicing the outputs).
	Expired, Refused, Failed int64
	// Queued is the time calls that ran spent waiting for their batch to start, summed
	// over the calls; Computed is the time of the batches (stacking, the session run,
	// slicing the outputs), summed over the batches.
	Queued, Computed time.Duration
	// Sizes is the batch-size histogram, cumulative: Sizes[i] runs had at most
	// SizeBuckets[i] rows; the last counts every run.
	Sizes [len(SizeBuckets) + 1]int64
}

// SizeBuckets are the upper bounds of the batch-size histogram: powers of two.
var SizeBuckets = [...]int64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}

// Snapshot returns a copy of the figures.
func (s *Stats) Snapshot() Counts {
	s.mu.Lock()
	c := s.counts
	s.mu.Unlock()
	for i := 1; i < len(c.Sizes); i++ {
		c.Sizes[i] += c.Sizes[i-1]
	}
	return c
}

// record adds one batch's figures (or one refusal's); d.Sizes is not read, a run
// (d.Runs == 1) counts in the bucket of its d.Rows.
func (s *Stats) record(d Counts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &s.counts
	if d.Runs == 1 {
		i := 0
		for i < len(SizeBuckets) && d.Rows > SizeBuckets[i] {
			i++
		}
		c.Sizes[i]++
	}
	c.Runs += d.Runs
	c.Rows += d.Rows
	c.Expired += d.Expired
	c.Refused += d.Refused
	c.Failed += d.Failed
	c.Queued += d.Queued
	c.Computed += d.Computed
}

// New wraps inner with the given batching configuration.
func New(inner tensor.Engine, cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Engine{inner: inner, cfg: cfg, slots: slots{size: cfg.QueueSize}, queues: map[string]*queue{}}, nil
}

// Stats returns the engine's counters.
func (e *Engine) Stats() *Stats { return &e.stats }

// Waiting returns how many calls are queued now, not yet in a session run.
func (e *Engine) Waiting() int { return e.slots.waiting() }

// call is one Run waiting in a queue.
type call struct {
	ctx    context.Context
	inputs map[string]*tensor.Tensor
	rows   int
	// priority orders the call in its queue (from the context, WithPriority).
	priority Priority
	queued   time.Time   // when it joined the queue
	done     chan result // buffered: the worker never blocks on a caller that left
}

type result struct {
	out map[string]*tensor.Tensor
	err error
}

// queue holds the calls that can share a batch: same signature, outputs and shapes.
type queue struct {
	signature string
	outputs   []string
	calls     *pending
}

// Run queues the call at its context's priority (WithPriority) and waits for its rows
// of the batch's outputs. Inputs must all have the same leading (batch) dimension.
func (e *Engine) Run(ctx context.Context, signature string, inputs map[string]*tensor.Tensor, outputs []string) (map[string]*tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, key, err := batchKey(signature, inputs, outputs)
	if err != nil || e.cfg.MaxBatch == 1 {
		// Unbatchable input (no common batch dimension): let the model judge it alone.
		return e.inner.Run(ctx, signature, inputs, outputs)
	}
	prio := PriorityFrom(ctx)
	if !e.slots.acquire(prio) {
		e.stats.record(Counts{Refused: 1})
		return nil, fmt.Errorf("%w: %d calls waiting (%s priority); retry later", ErrQueueFull, share(prio, e.cfg.QueueSize), prio)
	}
	c := &call{ctx: ctx, inputs: inputs, rows: rows, priority: prio, queued: time.Now(), done: make(chan result, 1)}
	if err := e.enqueue(key, signature, outputs, c); err != nil {
		e.slots.release()
		return nil, err
	}
	select {
	case r := <-c.done:
		return r.out, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// batchKey returns the call's row count and the key of the queue it may share. It
// runs on every call, so it builds the key by hand: fmt and its reflection were a
// tenth of a small model's allocations per request.
func batchKey(signature string, inputs map[string]*tensor.Tensor, outputs []string) (int, string, error) {
	b := make([]byte, 0, 64)
	b = append(b, signature...)
	b = append(b, '|')
	for i, o := range outputs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, o...)
	}
	rows := -1
	for _, k := range sortedKeys(inputs) {
		t := inputs[k]
		// A malformed tensor (more or fewer elements than its shape holds) runs alone,
		// for the model to refuse: stacked, it failed the whole batch, and two whose
		// counts made up for each other shifted the other calls' rows.
		if t == nil || len(t.Shape) == 0 || t.Validate() != nil {
			return 0, "", errors.New("unbatchable")
		}
		if rows >= 0 && int(t.Shape[0]) != rows {
			return 0, "", errors.New("unbatchable")
		}
		rows = int(t.Shape[0])
		b = append(b, '|')
		b = append(b, k...)
		b = append(b, ':')
		b = append(b, t.DType...)
		b = append(b, '[')
		for i, d := range t.Shape[1:] {
			if i > 0 {
				b = append(b, ' ')
			}
			b = strconv.AppendInt(b, d, 10)
		}
		b = append(b, ']')
	}
	if rows <= 0 || len(outputs) == 0 {
		return 0, "", errors.New("unbatchable")
	}
	return rows, string(b), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// enqueue puts c on the queue for key, starting the queue's workers on first use.
func (e *Engine) enqueue(key, signature string, outputs []string, c *call) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return tensor.ErrClosed
	}
	q, ok := e.queues[key]
	if !ok {
		q = &queue{signature: signature, outputs: slices.Clone(outputs), calls: newPending()}
		e.queues[key] = q
		for range e.cfg.Workers {
			e.wg.Add(1)
			go e.work(q)
		}
	}
	q.calls.push(c)
	return nil
}

// Close stops the workers once the queued calls are answered, then closes the model.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	for _, q := range e.queues {
		q.calls.close()
	}
	e.mu.Unlock()
	e.wg.Wait()
	return e.inner.Close()
}
