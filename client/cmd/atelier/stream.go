package main

import (
	"context"
	"flag"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// streamEvent is one message of the stream, in JSON output.
type streamEvent struct {
	Kind        string          `json:"kind"` // result, summary or alert
	FrameID     uint64          `json:"frame_id,omitempty"`
	File        string          `json:"file,omitempty"`
	Predictions []prediction    `json:"predictions,omitempty"`
	Detections  []detection     `json:"detections,omitempty"`
	Skipped     bool            `json:"skipped,omitempty"`
	CameraID    string          `json:"camera_id,omitempty"`
	Frames      uint64          `json:"frames,omitempty"`
	Counts      []categoryCount `json:"counts,omitempty"`
	Rule        string          `json:"rule,omitempty"`
	Label       string          `json:"label,omitempty"`
	Score       float32         `json:"score,omitempty"`
	Error       *inputError     `json:"error,omitempty"`
}

type categoryCount struct {
	Label string `json:"label"`
	Count uint64 `json:"count"`
}

// alertFlags collects repeated --alert NAME=CATEGORY[,CATEGORY...] flags.
type alertFlags []*pb.AlertRule

func (f *alertFlags) String() string { return fmt.Sprint(len(*f), " rules") }

func (f *alertFlags) Set(v string) error {
	name, cats, ok := strings.Cut(v, "=")
	if !ok || name == "" || cats == "" {
		return fmt.Errorf("want NAME=CATEGORY[,CATEGORY...], got %q", v)
	}
	*f = append(*f, &pb.AlertRule{Name: name, Categories: strings.Split(cats, ",")})
	return nil
}

func streamCmd(fs *flag.FlagSet) func(context.Context, *app, []string) error {
	detect := fs.Bool("detect", false, "run DetectStream instead of ClassifyStream")
	camera := fs.String("camera", "cli", "camera id the summaries and alerts carry")
	policy := fs.String("policy", "block", "when frames come too fast: block (backpressure) or latest (drop stale frames)")
	queue := fs.Uint("queue", 0, "frames queued on the server, 1..64 (default: the server's, 8)")
	topK := fs.Int("top-k", 1, "categories per frame (classify)")
	model := fs.String("model", "", "model to use (default: the server's default)")
	fps := fs.Float64("fps", 0, "send at most this many frames a second (0: as fast as the stream takes them)")
	summary := fs.Duration("summary-every", 0, "ask for a tally summary this often (0: never)")
	var alerts alertFlags
	fs.Var(&alerts, "alert", "raise an alert when a category appears: NAME=CATEGORY[,CATEGORY...] (repeatable)")
	alertScore := fs.Float64("alert-score", 0.5, "lowest score that counts as seeing an alert's category")
	alertFrames := fs.Uint("alert-frames", 1, "frames in a row that must show the category before an alert")
	reconnect := fs.Duration("reconnect", 30*time.Second,
		"when the stream's server goes away (UNAVAILABLE), open a new stream and resume after the last answered frame; give up after this long without an answer (0: never)")
	return func(ctx context.Context, a *app, args []string) error {
		pol := map[string]pb.FramePolicy{"block": pb.FramePolicy_FRAME_POLICY_BLOCK, "latest": pb.FramePolicy_FRAME_POLICY_LATEST}[*policy]
		if pol == pb.FramePolicy_FRAME_POLICY_UNSPECIFIED || *topK < 1 || *topK > 1000 || *fps < 0 || *queue > 64 || *reconnect < 0 {
			return usagef("--policy must be block or latest, --top-k 1..1000, --queue 0..64, --fps and --reconnect not negative")
		}
		files, err := expandInputs(args)
		if err != nil {
			return err
		}
		for _, r := range alerts {
			r.MinScore, r.MinConsecutiveFrames = float32(*alertScore), uint32(*alertFrames)
		}
		opts := &pb.StreamOptions{CameraId: *camera, Policy: pol, QueueSize: uint32(*queue), AlertRules: alerts}
		if *summary > 0 {
			opts.SummaryInterval = durationpb.New(*summary)
		}
		c, err := a.connect()
		if err != nil {
			return err
		}
		var readErr error
		// frames yields the files from index from on, each with its own frame id
		// (its place in the list, from 1), so a resumed stream carries the same ids.
		frames := func(from int) iter.Seq[*pb.StreamFrame] {
			return func(yield func(*pb.StreamFrame) bool) {
				var tick <-chan time.Time
				if *fps > 0 {
					t := time.NewTicker(time.Duration(float64(time.Second) / *fps))
					defer t.Stop()
					tick = t.C
				}
				for i := from; i < len(files); i++ {
					img, err := loadImage(files[i], a.env.stdin)
					if err != nil {
						readErr = err
						return
					}
					if tick != nil {
						select {
						case <-tick:
						case <-ctx.Done():
							return
						}
					}
					if !yield(&pb.StreamFrame{FrameId: uint64(i + 1), CaptureTime: timestamppb.Now(), Image: img}) {
						return
					}
				}
			}
		}
		o := newOut(a.output, a.env.stdout, []string{"KIND", "FRAME", "FILE", "RESULT"},
			[]string{"kind", "frame_id", "file", "label", "score", "detections", "skipped", "camera_id", "rule", "counts", "error_code", "error_message"})
		o.fixWidths(7, 5, 30)
		s := &streamPrinter{a: a, o: o, files: files}
		k := int32(*topK)
		once := func(from int) error {
			if *detect {
				return c.DetectStream(ctx, &pb.DetectStreamConfig{Model: &pb.ModelSpec{Name: *model}, Options: opts}, frames(from),
					func(m *pb.DetectStreamResponse) error { return s.detect(m) })
			}
			return c.ClassifyStream(ctx, &pb.ClassifyStreamConfig{Model: &pb.ModelSpec{Name: *model}, TopK: &k, Options: opts}, frames(from),
				func(m *pb.ClassifyStreamResponse) error { return s.classify(m) })
		}
		err = resume(ctx, *reconnect, func() int { return int(s.answered) }, once, func(err error, from int) {
			fmt.Fprintf(a.env.stderr, "atelier: stream: %s: %s; reconnecting from frame %d\n",
				codeName(status.Code(err)), cleanCell(status.Convert(err).Message()), from+1)
		})
		if cerr := o.close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = readErr
		}
		if err == nil && s.answered < uint64(len(files)) {
			// Every frame gets a result, in order (skipped ones too): a stream that
			// ended before the last one's is a broken server, not a success.
			err = status.Errorf(codes.Internal, "the server ended the stream without answering frames %d..%d", s.answered+1, len(files))
		}
		if err != nil {
			return err
		}
		return tally(s.failed, s.results)
	}
}

// streamPrinter writes each stream message as it arrives.
type streamPrinter struct {
	a               *app
	o               *out
	files           []string
	results, failed int
	answered        uint64 // the highest frame id answered so far
}

func (s *streamPrinter) file(id uint64) string {
	if id >= 1 && id <= uint64(len(s.files)) {
		return s.files[id-1]
	}
	return ""
}

func (s *streamPrinter) classify(m *pb.ClassifyStreamResponse) error {
	if r := m.GetResult(); r != nil {
		e := streamEvent{Kind: "result", FrameID: r.FrameId, File: s.file(r.FrameId),
			Predictions: predictionsOf(r.Classification), Skipped: r.Skipped, Error: frameError(r.Error)}
		return s.result(e)
	}
	return s.other(m.GetSummary(), m.GetAlert())
}

func (s *streamPrinter) detect(m *pb.DetectStreamResponse) error {
	if r := m.GetResult(); r != nil {
		var d detectResult
		d.fill(&pb.DetectResponse{Detections: r.Detections})
		e := streamEvent{Kind: "result", FrameID: r.FrameId, File: s.file(r.FrameId),
			Detections: d.Detections, Skipped: r.Skipped, Error: frameError(r.Error)}
		return s.result(e)
	}
	return s.other(m.GetSummary(), m.GetAlert())
}

func (s *streamPrinter) result(e streamEvent) error {
	s.results++
	if e.FrameID >= 1 && e.FrameID <= uint64(len(s.files)) {
		// Only a frame that was sent counts: a resumed stream starts after it, and
		// a broken server's id (0, or 2^64-1, which would resume at file -1) must
		// not skip frames or crash the resume.
		s.answered = max(s.answered, e.FrameID)
	}
	text, label, score := "", "", ""
	switch {
	case e.Error != nil:
		s.failed++
		text = "error " + e.Error.String()
		s.a.reportFailure(nil, fmt.Sprintf("frame %d (%s)", e.FrameID, e.File), e.Error)
	case e.Skipped:
		text = "skipped"
	case len(e.Predictions) > 0:
		label, score = e.Predictions[0].Label, f32(e.Predictions[0].Score)
		text = fmt.Sprintf("%s %.4f", label, e.Predictions[0].Score)
	default:
		var parts []string
		for _, d := range e.Detections {
			parts = append(parts, d.GarmentType)
		}
		text = fmt.Sprintf("%d garments %s", len(e.Detections), strings.Join(parts, ","))
	}
	code, msg := "", ""
	if e.Error != nil {
		code, msg = e.Error.Code, e.Error.Message
	}
	id := strconv.FormatUint(e.FrameID, 10)
	return s.o.record(e, [][]string{{"result", id, e.File, text}}, [][]string{{"result", id, e.File, label, score,
		strconv.Itoa(len(e.Detections)), strconv.FormatBool(e.Skipped), "", "", "", code, msg}})
}

func (s *streamPrinter) other(sum *pb.TallySummary, al *pb.Alert) error {
	if sum != nil {
		e := streamEvent{Kind: "summary", CameraID: sum.CameraId, Frames: sum.Frames}
		var parts []string
		for _, c := range sum.Counts {
			e.Counts = append(e.Counts, categoryCount{c.Label, c.Count})
			parts = append(parts, fmt.Sprintf("%s=%d", c.Label, c.Count))
		}
		counts := strings.Join(parts, " ")
		return s.o.record(e, [][]string{{"summary", "-", sum.CameraId, fmt.Sprintf("%d frames: %s", sum.Frames, counts)}},
			[][]string{{"summary", "", "", "", "", "", "", sum.CameraId, "", counts, "", ""}})
	}
	if al != nil {
		e := streamEvent{Kind: "alert", FrameID: al.FrameId, File: s.file(al.FrameId), CameraID: al.CameraId,
			Rule: al.Rule, Label: al.Label, Score: al.Score}
		id := strconv.FormatUint(al.FrameId, 10)
		return s.o.record(e, [][]string{{"alert", id, e.File, fmt.Sprintf("rule %s: %s %.4f on %s", al.Rule, al.Label, al.Score, al.CameraId)}},
			[][]string{{"alert", id, e.File, al.Label, f32(al.Score), "", "", al.CameraId, al.Rule, "", "", ""}})
	}
	return nil
}

func frameError(e *pb.FrameError) *inputError {
	if e == nil {
		return nil
	}
	return &inputError{Code: codeName(codes.Code(e.Code)), Message: e.Message}
}

// resume runs a stream with once(from), from the first frame on, and while it ends
// UNAVAILABLE (its server went away) runs it again after the last answered frame,
// which answered reports. It gives up after budget without a new answer, and at once
// when budget is 0. Frames the old stream had sent but not answered are sent again.
func resume(ctx context.Context, budget time.Duration, answered func() int, once func(from int) error, onRetry func(error, int)) error {
	last, since := answered(), time.Now()
	wait := 50 * time.Millisecond
	for {
		err := once(answered())
		if err == nil || status.Code(err) != codes.Unavailable || budget == 0 || ctx.Err() != nil {
			return err
		}
		if n := answered(); n > last {
			last, since, wait = n, time.Now(), 50*time.Millisecond
		}
		if time.Since(since) > budget {
			return err
		}
		onRetry(err, answered())
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}
