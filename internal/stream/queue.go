package stream

import (
	"context"
	"sync"
)

// item is one queue entry: a frame to process, or the report of a frame evicted
// under PolicyLatest (its image already released).
type item struct {
	frame   Frame
	skipped bool
}

// queue is the bounded frame queue between one receive loop (push) and one
// dispatcher (pop). Skip reports always precede the frames, because eviction takes
// the oldest frame.
type queue struct {
	size   int
	policy Policy

	mu     sync.Mutex
	items  []item
	frames int // items that are frames, at most size
	skips  int // items that are skip reports, at most MaxPendingSkips
	closed bool
	pushed chan struct{} // signalled when an item is added or the queue closes
	popped chan struct{} // signalled when an item is taken
}

func newQueue(size int, policy Policy) *queue {
	return &queue{size: size, policy: policy, pushed: make(chan struct{}, 1), popped: make(chan struct{}, 1)}
}

// signal wakes the one goroutine that may be waiting on ch.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// push adds f, waiting while the queue is full under PolicyBlock (or while too many
// skip reports wait under PolicyLatest). It fails only when ctx is done.
func (q *queue) push(ctx context.Context, f Frame) error {
	for {
		q.mu.Lock()
		if q.frames == q.size && q.policy == PolicyLatest && q.skips < MaxPendingSkips {
			q.evictOldest()
		}
		if q.frames < q.size {
			q.items = append(q.items, item{frame: f})
			q.frames++
			q.mu.Unlock()
			signal(q.pushed)
			return nil
		}
		q.mu.Unlock()
		select {
		case <-q.popped:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// evictOldest turns the oldest queued frame into a skip report. Call with mu held.
func (q *queue) evictOldest() {
	i := q.skips // skip reports come first, so the oldest frame follows them
	q.items[i] = item{frame: Frame{ID: q.items[i].frame.ID, Captured: q.items[i].frame.Captured}, skipped: true}
	q.frames--
	q.skips++
}

// close marks the end of the frames; pop drains what is queued, then reports done.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	signal(q.pushed)
}

// pop takes the oldest item, waiting for one. It returns false once the queue is
// closed and empty, or when ctx is done.
func (q *queue) pop(ctx context.Context) (item, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			it := q.items[0]
			q.items[0] = item{} // release the frame's bytes
			q.items = q.items[1:]
			if it.skipped {
				q.skips--
			} else {
				q.frames--
			}
			q.mu.Unlock()
			signal(q.popped)
			return it, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return item{}, false
		}
		select {
		case <-q.pushed:
		case <-ctx.Done():
			return item{}, false
		}
	}
}
