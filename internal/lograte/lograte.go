// Package lograte bounds how many lines a second a source may write to the log. Lines
// a remote party can cause (a failed call, a failed TLS handshake) must not reach the
// log at the party's rate: a line each at 20,000 calls a second fills a disk. The lines
// held back are counted, and the next line written says how many.
package lograte

import (
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Limiter admits at most PerSecond lines in each second. The zero value admits none;
// set PerSecond.
type Limiter struct {
	PerSecond int

	mu         sync.Mutex
	window     time.Time // start of the current second
	written    int       // lines admitted in the window
	suppressed int64     // lines held back since the last one admitted
	total      int64     // lines ever held back
}

// Admit says whether a line may be written at now and, if so, how many were held back
// since the last one written.
func (l *Limiter) Admit(now time.Time) (ok bool, suppressed int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.window) >= time.Second {
		l.window, l.written = now, 0
	}
	if l.written >= l.PerSecond {
		l.suppressed++
		l.total++
		return false, 0
	}
	l.written++
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// Suppressed returns how many lines were ever held back.
func (l *Limiter) Suppressed() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// HTTPErrorLog is an http.Server's ErrorLog that writes Go's HTTP server errors (a
// failed TLS handshake, a malformed request: one line each) to l at warn level with
// msg, at most perSecond a second.
func HTTPErrorLog(l *slog.Logger, msg string, perSecond int) *log.Logger {
	return log.New(&writer{log: l, msg: msg, lim: &Limiter{PerSecond: perSecond}, now: time.Now}, "", 0)
}

type writer struct {
	log *slog.Logger
	msg string
	lim *Limiter
	now func() time.Time
}

func (w *writer) Write(p []byte) (int, error) {
	ok, suppressed := w.lim.Admit(w.now())
	if !ok {
		return len(p), nil
	}
	attrs := []any{"error", strings.TrimSpace(string(p))}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	w.log.Warn(w.msg, attrs...)
	return len(p), nil
}
