package main

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestResume runs resume against scripted streams: each attempt answers some frames,
// then ends with a status.
func TestResume(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "connection reset")
	cases := []struct {
		name     string
		budget   time.Duration
		attempts []struct {
			answer int
			err    error
		} // frames answered, then the end
		wantFrom []int // where each attempt started
		wantCode codes.Code
	}{
		{"no failure", time.Second, []struct {
			answer int
			err    error
		}{{10, nil}}, []int{0}, codes.OK},
		{"resumes after the last answer", time.Second,
			[]struct {
				answer int
				err    error
			}{{4, unavailable}, {3, unavailable}, {3, nil}}, []int{0, 4, 7}, codes.OK},
		{"other errors end it", time.Second,
			[]struct {
				answer int
				err    error
			}{{2, status.Error(codes.InvalidArgument, "bad")}}, []int{0}, codes.InvalidArgument},
		{"budget 0 never reconnects", 0, []struct {
			answer int
			err    error
		}{{2, unavailable}}, []int{0}, codes.Unavailable},
		{"gives up without progress", 150 * time.Millisecond,
			[]struct {
				answer int
				err    error
			}{{1, unavailable}, {0, unavailable}, {0, unavailable}, {0, unavailable}, {0, unavailable}, {0, unavailable}},
			[]int{0, 1, 1}, codes.Unavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			answered, i := 0, 0
			var from []int
			once := func(f int) error {
				from = append(from, f)
				a := tc.attempts[i]
				i++
				answered += a.answer
				return a.err
			}
			retries := 0
			err := resume(context.Background(), tc.budget, func() int { return answered }, once, func(error, int) { retries++ })
			if got := status.Code(err); got != tc.wantCode {
				t.Fatalf("got %v, want %v", got, tc.wantCode)
			}
			if len(from) < len(tc.wantFrom) {
				t.Fatalf("attempts started at %v, want at least %v", from, tc.wantFrom)
			}
			for j, w := range tc.wantFrom {
				if from[j] != w {
					t.Errorf("attempt %d started at frame index %d, want %d (all: %v)", j, from[j], w, from)
				}
			}
			if retries != len(from)-1 {
				t.Errorf("reported %d reconnects for %d attempts", retries, len(from))
			}
		})
	}
}
