package batching

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/tensor"
)

// costModel sleeps like a model whose run costs a fixed part plus a part per row.
type costModel struct{ fixed, perRow time.Duration }

func (m costModel) Run(ctx context.Context, sig string, in map[string]*tensor.Tensor, outs []string) (map[string]*tensor.Tensor, error) {
	x := in["x"]
	time.Sleep(m.fixed + time.Duration(x.Shape[0])*m.perRow)
	return map[string]*tensor.Tensor{"y": {DType: tensor.Float32, Shape: x.Shape, Float32: make([]float32, len(x.Float32))}}, nil
}

func (costModel) Close() error { return nil }

// highCalls runs n high-priority calls one after another and returns their latencies.
func highCalls(t *testing.T, e *Engine, n int) []time.Duration {
	t.Helper()
	ctx := WithPriority(context.Background(), High)
	lat := make([]time.Duration, n)
	for i := range lat {
		start := time.Now()
		if _, err := e.Run(ctx, "s", input(1, 4, 0), []string{"y"}); err != nil {
			t.Fatalf("high-priority call: %v", err)
		}
		lat[i] = time.Since(start)
		time.Sleep(time.Millisecond)
	}
	return lat
}

func p50(lat []time.Duration) time.Duration {
	lat = slices.Clone(lat)
	slices.Sort(lat)
	return lat[len(lat)/2]
}

func p99(lat []time.Duration) time.Duration {
	lat = slices.Clone(lat)
	slices.Sort(lat)
	return lat[len(lat)*99/100]
}

// flood keeps the engine busy with low-priority calls from many clients (each backing
// off briefly when refused) until the returned stop is called; it returns once the
// backlog holds at least minQueued calls.
func flood(t *testing.T, e *Engine, clients, minQueued int) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(WithPriority(context.Background(), Low))
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := e.Run(ctx, "s", input(1, 4, 0), []string{"y"}); errors.Is(err, ErrQueueFull) {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.slots.waiting() < minQueued && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if q := e.slots.waiting(); q < minQueued {
		cancel()
		wg.Wait()
		t.Fatalf("only %d low calls queued, want %d: the flood built no backlog", q, minQueued)
	}
	return func() {
		cancel()
		wg.Wait()
		for e.slots.waiting() > 0 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // the last batch's run
	}
}

// TestPriorityHighPassesLowFlood is the acceptance test: a flood of
// low-priority calls keeps several batches queued, yet raises a high-priority call's
// p99 (and p50) by less than 2x. Without priorities the high call would wait behind
// every queued low batch (its p50 alone rises about 4x). Idle and flooded phases
// alternate so that the machine's own noise falls on both alike; since a p99 of a few
// hundred calls on a shared 2-core machine can still catch a stall of the whole
// machine, a failed measurement is repeated, up to three in all, and every one is
// logged.
func TestPriorityHighPassesLowFlood(t *testing.T) {
	var problems []string
	for attempt := 1; attempt <= 3; attempt++ {
		problems = measurePriority(t)
		if len(problems) == 0 {
			return
		}
		t.Logf("attempt %d: %s", attempt, strings.Join(problems, "; "))
	}
	t.Errorf("in three measurements: %s", strings.Join(problems, "; "))
}

// measurePriority measures once and returns what broke the 2x bound.
func measurePriority(t *testing.T) []string {
	cfg := Config{MaxBatch: 32, MaxDelay: 2 * time.Millisecond, QueueSize: 512, Workers: 1}
	model := costModel{fixed: 4 * time.Millisecond, perRow: 50 * time.Microsecond}
	e, err := New(model, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var idle, flooded []time.Duration
	for range 5 {
		idle = append(idle, highCalls(t, e, 60)...)
		stop := flood(t, e, 100, 2*cfg.MaxBatch)
		flooded = append(flooded, highCalls(t, e, 60)...)
		stop()
	}
	pi, pf := p99(idle), p99(flooded)
	mi, mf := p50(idle), p50(flooded)
	t.Logf("high-priority p99: idle %v, under a low flood %v (%.2fx); p50 %v and %v (%.2fx)",
		pi, pf, float64(pf)/float64(pi), mi, mf, float64(mf)/float64(mi))
	var problems []string
	if pf > 2*pi {
		problems = append(problems, fmt.Sprintf("p99 under a low flood %v is more than 2x the idle %v", pf, pi))
	}
	if mf > 2*mi {
		problems = append(problems, fmt.Sprintf("p50 under a low flood %v is more than 2x the idle %v", mf, mi))
	}
	return problems
}

func TestPriorityShares(t *testing.T) {
	for _, tc := range []struct {
		p          Priority
		size, want int
	}{
		{Low, 256, 128}, {Normal, 256, 256}, {High, 256, 320}, {Low, 1, 1}, {High, 1, 2},
	} {
		if got := share(tc.p, tc.size); got != tc.want {
			t.Errorf("share(%v, %d) = %d, want %d", tc.p, tc.size, got, tc.want)
		}
	}
}

func TestParsePriority(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Priority
		ok   bool
	}{{"high", High, true}, {"", Normal, true}, {"normal", Normal, true}, {"low", Low, true}, {"urgent", Normal, false}} {
		got, err := ParsePriority(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParsePriority(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestLowCannotFillTheQueue: low calls stop at their share, normal ones still get in.
func TestLowCannotFillTheQueue(t *testing.T) {
	hold := make(chan struct{})
	fake := &fakeModel{hold: hold, started: make(chan struct{}, 100)}
	e, err := New(fake, Config{MaxBatch: 1 << 10, MaxDelay: time.Hour, QueueSize: 4, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { close(hold); e.Close() }()
	low := WithPriority(context.Background(), Low)
	for range 2 {
		go e.Run(low, "s", input(1, 1, 0), []string{"y"})
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.slots.waiting() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if _, err := e.Run(low, "s", input(1, 1, 0), []string{"y"}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third low call: got %v, want ErrQueueFull (low share is 2 of 4)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := e.Run(ctx, "s", input(1, 1, 0), []string{"y"}); errors.Is(err, ErrQueueFull) {
		t.Fatalf("normal call refused while only low calls hold half the queue")
	}
}
