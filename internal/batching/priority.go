package batching

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Priority orders calls in a model's queue: a worker gathering a batch takes every
// waiting High call before any Normal one, and every Normal before any Low.
type Priority int

const (
	Low Priority = iota
	Normal
	High
	numPriorities
)

// String names the priority as the API does.
func (p Priority) String() string {
	switch p {
	case Low:
		return "low"
	case High:
		return "high"
	}
	return "normal"
}

// ParsePriority reads "high", "normal" or "low"; "" is Normal.
func ParsePriority(s string) (Priority, error) {
	switch s {
	case "high":
		return High, nil
	case "normal", "":
		return Normal, nil
	case "low":
		return Low, nil
	}
	return Normal, fmt.Errorf("priority %.40q is not high, normal or low", s)
}

type priorityKey struct{}

// WithPriority returns ctx carrying p; Run queues the call at p.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// PriorityFrom returns ctx's priority (Normal when it has none).
func PriorityFrom(ctx context.Context) Priority {
	if p, ok := ctx.Value(priorityKey{}).(Priority); ok && p >= Low && p < numPriorities {
		return p
	}
	return Normal
}

// share is the part of the queue bound each priority may fill: Low calls may take half
// of QueueSize, Normal all of it, and High a quarter more, so a flood of bulk calls
// never refuses an interactive one.
func share(p Priority, size int) int {
	switch p {
	case Low:
		return max(1, size/2)
	case High:
		return size + max(1, size/4)
	}
	return size
}

// slots counts the calls waiting across a model's queues.
type slots struct {
	mu   sync.Mutex
	used int
	size int
}

func (s *slots) acquire(p Priority) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used >= share(p, s.size) {
		return false
	}
	s.used++
	return true
}

func (s *slots) waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

func (s *slots) release() {
	s.mu.Lock()
	s.used--
	s.mu.Unlock()
}

// pending is one queue's waiting calls, by priority.
type pending struct {
	mu     sync.Mutex
	calls  [numPriorities][]*call
	closed bool
	wake   chan struct{} // a token when calls may be waiting or the queue closed
}

func newPending() *pending { return &pending{wake: make(chan struct{}, 1)} }

func (q *pending) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *pending) push(c *call) {
	q.mu.Lock()
	q.calls[c.priority] = append(q.calls[c.priority], c)
	q.mu.Unlock()
	q.signal()
}

// unpop puts back a call that did not fit a batch, first in line at its priority.
func (q *pending) unpop(c *call) {
	q.mu.Lock()
	q.calls[c.priority] = append([]*call{c}, q.calls[c.priority]...)
	q.mu.Unlock()
	q.signal()
}

func (q *pending) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// pop takes the oldest call of the highest priority waiting, if that priority is at
// least min. closed reports a closed, empty queue; lower reports that only calls below
// min are waiting.
func (q *pending) pop(min Priority) (c *call, closed, lower bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for p := numPriorities - 1; p >= 0; p-- {
		if len(q.calls[p]) == 0 {
			continue
		}
		if p < min {
			q.signal() // for another worker
			return nil, false, true
		}
		c = q.calls[p][0]
		q.calls[p][0] = nil
		q.calls[p] = q.calls[p][1:]
		if q.left() > 0 {
			q.signal() // another worker may take the rest
		}
		return c, false, false
	}
	if q.closed {
		q.signal() // wake the other workers to see it too
	}
	return nil, q.closed, false
}

func (q *pending) left() int {
	n := 0
	for _, cs := range q.calls {
		n += len(cs)
	}
	return n
}

// next waits for a call of priority min or higher until timeout fires (nil: no
// timeout). It returns nil at once when only lower calls wait, when the queue is closed
// and empty, or when the timeout fires.
func (q *pending) next(min Priority, timeout <-chan time.Time) *call {
	for {
		c, closed, lower := q.pop(min)
		if c != nil || closed || lower {
			return c
		}
		select {
		case <-q.wake:
		case <-timeout:
			return nil
		}
	}
}
