package parallel

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/atelier-vision/atelier/internal/errkind"
)

func TestForVisitsEveryIndexOnce(t *testing.T) {
	var seen [100]atomic.Int32
	if err := For(context.Background(), len(seen), 4, func(i int) error { seen[i].Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	for i := range seen {
		if got := seen[i].Load(); got != 1 {
			t.Fatalf("index %d: got %d calls, want 1", i, got)
		}
	}
}

func TestForJoinsErrorsAndRecoversPanics(t *testing.T) {
	boom := errors.New("boom")
	err := For(context.Background(), 5, 2, func(i int) error {
		switch i {
		case 1:
			return boom
		case 3:
			panic("bad item")
		}
		return nil
	})
	var p *errkind.Panic
	if !errors.Is(err, boom) || !errors.As(err, &p) || !strings.Contains(err.Error(), "bad item") {
		t.Fatalf("got %v, want boom and the recovered panic", err)
	}
}

func TestForStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	err := For(ctx, 1000, 1, func(i int) error {
		if calls.Add(1) == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls.Load() >= 1000 {
		t.Fatalf("got %v after %d calls, want Canceled well before 1000", err, calls.Load())
	}
}
