// Package parallel runs the per-item work of one request on a bounded pool of
// goroutines, each of which recovers panics, so a bad item fails its request and
// nothing else.
package parallel

import (
	"context"
	"errors"
	"sync"

	"github.com/atelier-vision/atelier/internal/errkind"
)

// For calls fn(0..n-1) on up to workers goroutines and returns ctx's error if it ended
// first, or else every error fn returned, joined in index order. It stops handing out
// indexes once ctx is done; a panic in fn becomes that index's error.
func For(ctx context.Context, n, workers int, fn func(i int) error) error {
	workers = max(1, min(n, workers))
	errs := make([]error, n)
	if workers == 1 {
		// One worker (one image, most often) runs on the caller's goroutine: a
		// goroutine and a channel hand-off per call cost more than a small image.
		for i := 0; i < n && ctx.Err() == nil; i++ {
			errs[i] = call(fn, i)
		}
	} else {
		spread(ctx, n, workers, fn, errs)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// spread hands the indexes out to workers goroutines until ctx is done.
func spread(ctx context.Context, n, workers int, fn func(i int) error, errs []error) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = call(fn, i)
			}
		}()
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
}

func call(fn func(int) error, i int) (err error) {
	defer errkind.Recover(&err)
	return fn(i)
}
