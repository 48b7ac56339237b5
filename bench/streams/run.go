package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atelier-vision/atelier/internal/fashionmnist"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// bench holds what every run shares.
type bench struct {
	conn             *grpc.ClientConn
	frames           []*pb.Image
	warmup, duration time.Duration
	window           int
}

// recorder counts what happens inside the measured window [from, to).
type recorder struct {
	from, to time.Time

	mu        sync.Mutex
	sent      int
	served    []int // per stream
	skipped   int
	failed    int
	latencies []time.Duration
	firstErr  string
}

func newRecorder(b bench, streams int) *recorder {
	from := time.Now().Add(b.warmup)
	return &recorder{from: from, to: from.Add(b.duration), served: make([]int, streams)}
}

func (r *recorder) in(t time.Time) bool { return !t.Before(r.from) && t.Before(r.to) }

func (r *recorder) send(t time.Time) {
	if r.in(t) {
		r.mu.Lock()
		r.sent++
		r.mu.Unlock()
	}
}

// answer counts one answer that arrived at t, lat after its frame was sent.
func (r *recorder) answer(stream int, t time.Time, lat time.Duration, skipped, failed bool) {
	if !r.in(t) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case skipped:
		r.skipped++
	case failed:
		r.failed++
	default:
		r.served[stream]++
		r.latencies = append(r.latencies, lat)
	}
}

func (r *recorder) fail(err error) {
	if status.Code(err) == codes.Canceled || errors.Is(err, context.Canceled) {
		return
	}
	r.mu.Lock()
	if r.firstErr == "" {
		r.firstErr = err.Error()
	}
	r.mu.Unlock()
}

// line summarises the window.
func (r *recorder) line(label string, streams int) Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	secs := r.to.Sub(r.from).Seconds()
	l := Line{Label: label, Streams: streams, Seconds: secs, Sent: r.sent, Skipped: r.skipped, Failed: r.failed, FirstError: r.firstErr}
	for _, n := range r.served {
		l.Served += n
	}
	l.Total = float64(l.Served) / secs
	l.PerStream = l.Total / float64(len(r.served))
	l.PerStreamMin, l.PerStreamMax = float64(slices.Min(r.served))/secs, float64(slices.Max(r.served))/secs
	if answered := l.Served + l.Skipped + l.Failed; answered > 0 {
		l.SkippedShare = float64(l.Skipped) / float64(answered)
	}
	slices.Sort(r.latencies)
	if n := len(r.latencies); n > 0 {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		l.P50, l.P99 = ms(r.latencies[n/2]), ms(r.latencies[min(n-1, n*99/100)])
	}
	return l
}

// streams runs n ClassifyStreams for the warm-up and the measured time. Under the
// block policy each keeps b.window frames in flight; with offered > 0 each sends
// offered/n frames a second instead.
func (b bench) streams(n int, policy pb.FramePolicy, offered float64) Line {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := newRecorder(b, n)
	var pace time.Duration
	if offered > 0 {
		pace = time.Duration(float64(n) / offered * float64(time.Second))
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.stream(ctx, i, policy, pace, rec)
		}()
	}
	time.Sleep(time.Until(rec.to))
	cancel()
	wg.Wait()
	label := "stream"
	if offered > 0 {
		label = "latest-2x"
	}
	l := rec.line(label, n)
	l.Offered = offered
	return l
}

// stream runs one ClassifyStream until ctx is done: a goroutine sends, this one receives.
func (b bench) stream(ctx context.Context, i int, policy pb.FramePolicy, pace time.Duration, rec *recorder) {
	s, err := pb.NewClassifyServiceClient(b.conn).ClassifyStream(ctx)
	if err != nil {
		rec.fail(err)
		return
	}
	cfg := &pb.ClassifyStreamConfig{TopK: proto.Int32(1), Options: &pb.StreamOptions{CameraId: fmt.Sprint("bench-", i), Policy: policy}}
	if err := s.Send(&pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Config{Config: cfg}}); err != nil {
		rec.fail(err)
		return
	}
	var (
		mu     sync.Mutex
		sentAt = map[uint64]time.Time{}
		slots  chan struct{}
	)
	if pace == 0 {
		slots = make(chan struct{}, b.window)
	}
	go func() {
		start := time.Now()
		for id := uint64(1); ; id++ {
			if slots != nil {
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
			} else if wait := time.Until(start.Add(time.Duration(id) * pace)); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return
				}
			}
			now := time.Now()
			mu.Lock()
			sentAt[id] = now
			mu.Unlock()
			rec.send(now)
			f := &pb.StreamFrame{FrameId: id, CaptureTime: timestamppb.New(now), Image: b.frames[int(id)%len(b.frames)]}
			if s.Send(&pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Frame{Frame: f}}) != nil {
				return
			}
		}
	}()
	for {
		m, err := s.Recv()
		if err != nil {
			rec.fail(err)
			return
		}
		r := m.GetResult()
		if r == nil {
			continue
		}
		now := time.Now()
		mu.Lock()
		sent := sentAt[r.FrameId]
		delete(sentAt, r.FrameId)
		mu.Unlock()
		if slots != nil {
			<-slots
		}
		rec.answer(i, now, now.Sub(sent), r.Skipped, r.Error != nil)
	}
}

// unary runs c closed-loop one-image Classify callers for the same time.
func (b bench) unary(c int) Line {
	rec := newRecorder(b, c)
	client := pb.NewClassifyServiceClient(b.conn)
	var wg sync.WaitGroup
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; time.Now().Before(rec.to); i += c {
				req := &pb.ClassifyRequest{TopK: proto.Int32(1), Images: []*pb.Image{b.frames[i%len(b.frames)]}}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				t0 := time.Now()
				rec.send(t0)
				_, err := client.Classify(ctx, req)
				cancel()
				if err != nil {
					rec.fail(err)
				}
				now := time.Now()
				rec.answer(w, now, now.Sub(t0), false, err != nil)
			}
		}()
	}
	wg.Wait()
	return rec.line("unary", c)
}

// pngOf encodes 28x28 grey pixels as PNG.
func pngOf(pix []uint8) ([]byte, error) {
	im := &image.Gray{Pix: pix, Stride: fashionmnist.Side, Rect: image.Rect(0, 0, fashionmnist.Side, fashionmnist.Side)}
	var buf bytes.Buffer
	err := png.Encode(&buf, im)
	return buf.Bytes(), err
}
