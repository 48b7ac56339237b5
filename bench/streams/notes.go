package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/atelier-vision/atelier/internal/stream"
)

// loadAverage is the machine's 1-minute load average when the benchmark started.
var loadAverage = func() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}()

const (
	beginMarker = "<!-- streams:begin -->"
	endMarker   = "<!-- streams:end -->"
)

// writeNotes puts the tables into path between the markers, replacing what was there,
// or appends them with the markers when the file has none.
func writeNotes(path string, lines []Line, window, repeat int, duration time.Duration) error {
	section := beginMarker + "\n" + render(lines, window, repeat, duration) + endMarker + "\n"
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	text := string(old)
	if b, e := strings.Index(text, beginMarker), strings.Index(text, endMarker); b >= 0 && e > b {
		text = text[:b] + section + text[e+len(endMarker)+1:]
	} else {
		if text != "" && !strings.HasSuffix(text, "\n\n") {
			text += "\n"
		}
		text += section
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// render writes the markdown tables for one run of the benchmark.
func render(lines []Line, window, repeat int, duration time.Duration) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	by := map[string]map[int]Line{}
	for _, l := range lines {
		if by[l.Label] == nil {
			by[l.Label] = map[int]Line{}
		}
		by[l.Label][l.Streams] = l
	}
	p("## Streams (`make bench-streams`)\n")
	p("ClassifyStream on the embedded classifier (28x28 Fashion-MNIST test items sent as PNG frames), "+
		"%v measured per run after a warm-up, client and server on the same %d cores (%s), measured %s "+
		"(load average %s at the start). Latency is from sending a frame to receiving its result, on loopback.\n",
		duration, runtime.NumCPU(), runtime.GOARCH, time.Now().UTC().Format("2006-01-02 15:04 MST"), loadAverage)
	p("**Block policy**: each stream keeps %d frames in flight, of which the server runs %d through the model "+
		"at once (`stream.Depth`); `unary` is one-image Classify calls with as many calls in flight as the "+
		"streams had frames in the model. Each is the best of %d interleaved runs.\n", window, min(window, stream.Depth), repeat)
	p("| streams | frames/s, total | per stream: mean (min-max) | p50 ms | p99 ms | unary frames/s (in flight) | streams / unary |")
	p("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, l := range lines {
		if l.Label != "stream" {
			continue
		}
		u := by["unary"][l.Streams*min(window, stream.Depth)]
		ratio := 0.0
		if u.Total > 0 {
			ratio = l.Total / u.Total
		}
		p("| %d | %.0f | %.0f (%.0f-%.0f) | %.1f | %.1f | %.0f (%d) | %.2f |",
			l.Streams, l.Total, l.PerStream, l.PerStreamMin, l.PerStreamMax, l.P50, l.P99, u.Total, u.Streams, ratio)
	}
	p("\n**Latest policy at 2x overload**: each stream sends twice its share of the block throughput above; " +
		"the server skips stale frames (queue of 8) and answers them as skipped. Served frames/s can fall " +
		"below the block throughput: the client shares the cores, and every skipped frame is still received " +
		"and answered.\n")
	p("| streams | offered frames/s | served frames/s | skipped share | p50 ms (served) | p99 ms (served) |")
	p("| ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, l := range lines {
		if l.Label == "latest-2x" {
			p("| %d | %.0f | %.0f | %.1f%% | %.1f | %.1f |", l.Streams, l.Offered, l.Total, 100*l.SkippedShare, l.P50, l.P99)
		}
	}
	return b.String()
}
