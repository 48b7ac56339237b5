package main

import (
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// httpErrorLinesPerSecond bounds the metrics server's error lines. Go's HTTP server
// writes one for every failed TLS handshake and every malformed request, so anyone
// who can reach the port could otherwise write to the log at any rate.
const httpErrorLinesPerSecond = 5

// httpErrorLog is the metrics server's ErrorLog: its lines go to log at warn level,
// at most httpErrorLinesPerSecond a second; the next line written says how many
// were left out.
func httpErrorLog(l *slog.Logger) *log.Logger {
	return log.New(&throttledWriter{log: l, now: time.Now}, "", 0)
}

type throttledWriter struct {
	log *slog.Logger
	now func() time.Time

	mu         sync.Mutex
	window     time.Time
	written    int
	suppressed int
}

func (w *throttledWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	now := w.now()
	if now.Sub(w.window) >= time.Second {
		w.window, w.written = now, 0
	}
	if w.written >= httpErrorLinesPerSecond {
		w.suppressed++
		w.mu.Unlock()
		return len(p), nil
	}
	w.written++
	suppressed := w.suppressed
	w.suppressed = 0
	w.mu.Unlock()
	attrs := []any{"error", strings.TrimSpace(string(p))}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	w.log.Warn("metrics http", attrs...)
	return len(p), nil
}
