package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress draws a bar with the rate and the time left on stderr, redrawing at most
// ten times a second. A nil *progress draws nothing.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	unit  string
	total int
	done  int
	start time.Time
	drawn time.Time
}

// newProgress returns a bar for total items, or nil when it should not be shown:
// only for more than one item, and only on a terminal unless forced.
func newProgress(a *app, total int, unit string) *progress {
	if total < 2 || !(a.progress || a.env.stderrTerminal) {
		return nil
	}
	return &progress{w: a.env.stderr, unit: unit, total: total, start: time.Now()}
}

// add counts n more items done.
func (p *progress) add(n int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	if now := time.Now(); now.Sub(p.drawn) >= 100*time.Millisecond || p.done == p.total {
		p.drawn = now
		fmt.Fprint(p.w, "\r"+progressLine(p.done, p.total, now.Sub(p.start), p.unit))
	}
}

// clear erases the bar, so that results printed on the same terminal do not follow
// it on its line; the next add draws it again below them.
func (p *progress) clear() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.drawn.IsZero() {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = time.Time{}
	}
}

// finish ends the bar's line.
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.w, "\r"+progressLine(p.done, p.total, time.Since(p.start), p.unit)+"\n")
}

// progressLine renders "[=====>    ]  50/100  12.5 files/s  ETA 4s".
func progressLine(done, total int, elapsed time.Duration, unit string) string {
	const width = 30
	fill := width * done / max(total, 1)
	bar := strings.Repeat("=", fill)
	if fill < width {
		bar += ">" + strings.Repeat(" ", width-fill-1)
	}
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(done) / s
	}
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(total-done) / rate * float64(time.Second))).Round(time.Second).String()
	}
	return fmt.Sprintf("[%s] %*d/%d  %.1f %s/s  ETA %s ", bar, len(fmt.Sprint(total)), done, total, rate, unit, eta)
}
