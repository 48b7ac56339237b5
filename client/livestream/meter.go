// Package livestream streams a video to Atelier and keeps a live account of the
// stream: frames sent and answered, skipped and failed, the frame rate, the latency
// from sending a frame to its answer, the server's latest tallies and every alert.
//
// Classify and Detect run a whole stream from a framesource.Source and print a
// progress line every second and every alert as it comes; Meter is the account on its
// own, for callers that drive the client's stream helpers themselves.
package livestream

import (
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atelier-vision/atelier/internal/termtext"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// maxSamples bounds the latency samples kept for the percentiles (the newest win).
const maxSamples = 100_000

// Meter is a stream's live account. It is safe for concurrent use.
type Meter struct {
	mu        sync.Mutex
	start     time.Time
	sentAt    map[uint64]time.Time // frames sent and not answered yet
	latencies []time.Duration      // of the answered frames, a ring of maxSamples
	next      int
	report    Report
}

// Report is a stream's account at one moment.
type Report struct {
	Sent, Answered, Skipped, Failed int
	Elapsed                         time.Duration
	// P50 and P99 are the latencies from sending a frame to its answer, over the
	// frames served (neither skipped nor failed).
	P50, P99 time.Duration
	// Summary is the server's latest tally summary, if it sent one.
	Summary *pb.TallySummary
	Alerts  []*pb.Alert
}

// NewMeter starts an account now.
func NewMeter() *Meter { return &Meter{start: time.Now(), sentAt: map[uint64]time.Time{}} }

// Frames numbers images as stream frames (ids 1, 2, ...), stamps each with the time
// it is sent as its capture time, and counts it as sent.
func (m *Meter) Frames(images iter.Seq[*pb.Image]) iter.Seq[*pb.StreamFrame] {
	return func(yield func(*pb.StreamFrame) bool) {
		id := uint64(0)
		for img := range images {
			id++
			now := time.Now()
			m.mu.Lock()
			m.sentAt[id] = now
			m.report.Sent++
			m.mu.Unlock()
			if !yield(&pb.StreamFrame{FrameId: id, CaptureTime: timestamppb.New(now), Image: img}) {
				return
			}
		}
	}
}

// Result counts one frame's answer.
func (m *Meter) Result(frameID uint64, skipped bool, err *pb.FrameError) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.report.Answered++
	sent, ok := m.sentAt[frameID]
	delete(m.sentAt, frameID)
	switch {
	case skipped:
		m.report.Skipped++
	case err != nil:
		m.report.Failed++
	case ok:
		if len(m.latencies) < maxSamples {
			m.latencies = append(m.latencies, time.Since(sent))
		} else {
			m.latencies[m.next] = time.Since(sent)
			m.next = (m.next + 1) % maxSamples
		}
	}
}

// Summary keeps the server's latest tally summary.
func (m *Meter) Summary(s *pb.TallySummary) {
	m.mu.Lock()
	m.report.Summary = s
	m.mu.Unlock()
}

// Alert records an alert.
func (m *Meter) Alert(a *pb.Alert) {
	m.mu.Lock()
	m.report.Alerts = append(m.report.Alerts, a)
	m.mu.Unlock()
}

// Report returns the account so far.
func (m *Meter) Report() Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.report
	r.Alerts = slices.Clone(r.Alerts)
	r.Elapsed = time.Since(m.start)
	if n := len(m.latencies); n > 0 {
		sorted := slices.Clone(m.latencies)
		slices.Sort(sorted)
		r.P50, r.P99 = sorted[n/2], sorted[min(n-1, n*99/100)]
	}
	return r
}

// String renders the account as one progress line:
//
//	12.0s  360 sent  358 answered (12 skipped, 0 failed)  29.8 frames/s  p50 18.2ms p99 40.5ms  Dress 120, Coat 80
func (r Report) String() string {
	rate := 0.0
	if r.Elapsed > 0 {
		rate = float64(r.Answered) / r.Elapsed.Seconds()
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	line := fmt.Sprintf("%6.1fs  %d sent  %d answered (%d skipped, %d failed)  %.1f frames/s  p50 %.1fms p99 %.1fms",
		r.Elapsed.Seconds(), r.Sent, r.Answered, r.Skipped, r.Failed, rate, ms(r.P50), ms(r.P99))
	if r.Summary != nil {
		var top []string
		for _, c := range r.Summary.Counts[:min(5, len(r.Summary.Counts))] {
			top = append(top, fmt.Sprintf("%s %d", termtext.Clean(c.Label), c.Count))
		}
		line += "  " + strings.Join(top, ", ")
	}
	if len(r.Alerts) > 0 {
		line += fmt.Sprintf("  %d alerts", len(r.Alerts))
	}
	return line
}

// AlertLine renders one alert for a log or a terminal.
func AlertLine(a *pb.Alert) string {
	return fmt.Sprintf("ALERT camera %q rule %q: %s (score %.2f) on frame %d at %s", a.CameraId, a.Rule, termtext.Clean(a.Label), a.Score,
		a.FrameId, a.CaptureTime.AsTime().Local().Format("15:04:05.000"))
}
