package livestream

import (
	"context"
	"fmt"
	"io"
	"iter"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/atelier-vision/atelier/client"
	"github.com/atelier-vision/atelier/client/framesource"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// Options sets how Classify and Detect send frames and report.
type Options struct {
	// FPS paces the frames; 0 sends them as fast as the stream takes them.
	FPS float64
	// Out receives a progress line every Every and at the end, and a line per alert;
	// nil prints nothing.
	Out io.Writer
	// Every is the progress interval; 0 means one second. It is also the summary
	// interval asked of the server when the config sets none.
	Every time.Duration
}

// Classify streams src through c's ClassifyStream with cfg and returns the final
// account. It ends when src's frames are all answered, ctx is done, or the stream or
// src fails (that error).
func Classify(ctx context.Context, c *client.Client, cfg *pb.ClassifyStreamConfig, src *framesource.Source, opts Options) (Report, error) {
	opts = opts.withDefaults()
	cfg = proto.Clone(cfg).(*pb.ClassifyStreamConfig)
	cfg.Options = withSummaries(cfg.Options, opts.Every)
	return run(ctx, src, opts, func(m *Meter, frames iter.Seq[*pb.StreamFrame], alert func(*pb.Alert)) error {
		return c.ClassifyStream(ctx, cfg, frames, func(r *pb.ClassifyStreamResponse) error {
			switch x := r.Message.(type) {
			case *pb.ClassifyStreamResponse_Result:
				m.Result(x.Result.FrameId, x.Result.Skipped, x.Result.Error)
			case *pb.ClassifyStreamResponse_Summary:
				m.Summary(x.Summary)
			case *pb.ClassifyStreamResponse_Alert:
				alert(x.Alert)
			}
			return nil
		})
	})
}

// Detect is Classify for DetectStream.
func Detect(ctx context.Context, c *client.Client, cfg *pb.DetectStreamConfig, src *framesource.Source, opts Options) (Report, error) {
	opts = opts.withDefaults()
	cfg = proto.Clone(cfg).(*pb.DetectStreamConfig)
	cfg.Options = withSummaries(cfg.Options, opts.Every)
	return run(ctx, src, opts, func(m *Meter, frames iter.Seq[*pb.StreamFrame], alert func(*pb.Alert)) error {
		return c.DetectStream(ctx, cfg, frames, func(r *pb.DetectStreamResponse) error {
			switch x := r.Message.(type) {
			case *pb.DetectStreamResponse_Result:
				m.Result(x.Result.FrameId, x.Result.Skipped, x.Result.Error)
			case *pb.DetectStreamResponse_Summary:
				m.Summary(x.Summary)
			case *pb.DetectStreamResponse_Alert:
				alert(x.Alert)
			}
			return nil
		})
	})
}

func (o Options) withDefaults() Options {
	if o.Every <= 0 {
		o.Every = time.Second
	}
	return o
}

// withSummaries asks for a summary every interval unless the options choose their own.
func withSummaries(o *pb.StreamOptions, every time.Duration) *pb.StreamOptions {
	if o == nil {
		o = &pb.StreamOptions{}
	}
	if o.SummaryInterval == nil {
		o.SummaryInterval = durationpb.New(every)
	}
	return o
}

// run drives one stream with a meter, printing progress until it ends.
func run(ctx context.Context, src *framesource.Source, opts Options,
	stream func(m *Meter, frames iter.Seq[*pb.StreamFrame], alert func(*pb.Alert)) error) (Report, error) {
	m := NewMeter()
	var mu sync.Mutex // one line at a time on Out
	say := func(line string) {
		if opts.Out != nil {
			mu.Lock()
			fmt.Fprintln(opts.Out, line)
			mu.Unlock()
		}
	}
	done := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		t := time.NewTicker(opts.Every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				say(m.Report().String())
			case <-done:
				return
			}
		}
	}()
	err := stream(m, m.Frames(src.Images(ctx, opts.FPS)), func(a *pb.Alert) {
		m.Alert(a)
		say(AlertLine(a))
	})
	close(done)
	<-ticked
	if err == nil {
		err = src.Err()
	}
	r := m.Report()
	say(r.String())
	return r, err
}
