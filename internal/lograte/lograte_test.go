package lograte

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimiterAdmitsPerSecondAndCountsTheRest(t *testing.T) {
	l := &Limiter{PerSecond: 3}
	t0 := time.Unix(100, 0)
	var admitted int
	for i := range 10 {
		if ok, _ := l.Admit(t0.Add(time.Duration(i) * time.Millisecond)); ok {
			admitted++
		}
	}
	if admitted != 3 || l.Suppressed() != 7 {
		t.Fatalf("admitted %d and held back %d of 10 in one second, want 3 and 7", admitted, l.Suppressed())
	}
	ok, suppressed := l.Admit(t0.Add(time.Second))
	if !ok || suppressed != 7 {
		t.Fatalf("the next second's first line: admitted %v, says %d held back; want true, 7", ok, suppressed)
	}
	if _, suppressed := l.Admit(t0.Add(time.Second + time.Millisecond)); suppressed != 0 {
		t.Fatalf("the count was not reset after it was reported: %d", suppressed)
	}
}

func TestHTTPErrorLog(t *testing.T) {
	var out bytes.Buffer
	lg := HTTPErrorLog(slog.New(slog.NewTextHandler(&out, nil)), "metrics http", 2)
	for range 5 {
		lg.Print("http: TLS handshake error from 10.0.0.1:5555: EOF\n")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `level=WARN msg="metrics http" error="http: TLS handshake error from 10.0.0.1:5555: EOF"`) {
		t.Fatalf("got %d lines, want 2 warn lines naming the error:\n%s", len(lines), out.String())
	}
}
