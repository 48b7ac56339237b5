package stream

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestQueuePolicies pushes 10 frames into a queue of 3 and pops everything.
func TestQueuePolicies(t *testing.T) {
	cases := []struct {
		policy Policy
		want   string // popped items in order: id, with * for a skip report
	}{
		{PolicyLatest, "[1* 2* 3* 4* 5* 6* 7* 8 9 10]"},
		{PolicyBlock, "[1 2 3 4 5 6 7 8 9 10]"},
	}
	for _, tc := range cases {
		t.Run(tc.policy.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			q := newQueue(3, tc.policy)
			var got []string
			pushed := make(chan error, 1)
			go func() {
				for id := range uint64(10) {
					if err := q.push(ctx, Frame{ID: id + 1}); err != nil {
						pushed <- err
						return
					}
				}
				q.close()
				pushed <- nil
			}()
			if tc.policy == PolicyLatest {
				if err := <-pushed; err != nil { // never waits: 3 frames and 7 reports
					t.Fatal(err)
				}
			}
			for {
				it, ok := q.pop(ctx)
				if !ok {
					break
				}
				s := fmt.Sprint(it.frame.ID)
				if it.skipped {
					s += "*"
				}
				got = append(got, s)
			}
			if fmt.Sprint(got) != tc.want {
				t.Fatalf("got %v, want %s", got, tc.want)
			}
		})
	}
}

// TestQueueBounds checks that a full queue waits under block, and under latest once
// MaxPendingSkips reports wait, and gives up when the context ends.
func TestQueueBounds(t *testing.T) {
	for _, tc := range []struct {
		policy Policy
		fits   int
	}{{PolicyBlock, 2}, {PolicyLatest, 2 + MaxPendingSkips}} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			q := newQueue(2, tc.policy)
			for i := range tc.fits {
				if err := q.push(context.Background(), Frame{ID: uint64(i)}); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if err := q.push(ctx, Frame{}); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("push onto a full queue: got %v, want it to wait until the deadline", err)
			}
			if q.frames != 2 || q.skips != tc.fits-2 {
				t.Fatalf("got %d frames and %d skip reports, want 2 and %d", q.frames, q.skips, tc.fits-2)
			}
		})
	}
}
