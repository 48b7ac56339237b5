package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/atelier-vision/atelier/client"
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
	return func(ctx context.Context, a *app, args []string) error {
		pol := map[string]pb.FramePolicy{"block": pb.FramePolicy_FRAME_POLICY_BLOCK, "latest": pb.FramePolicy_FRAME_POLICY_LATEST}[*policy]
		if pol == pb.FramePolicy_FRAME_POLICY_UNSPECIFIED || *topK < 1 || *topK > 1000 || *fps < 0 || *queue > 64 {
			return usagef("--policy must be block or latest, --top-k 1..1000, --queue 0..64, --fps not negative")
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
		frames := client.Frames(func(yield func(*pb.Image) bool) {
			var tick <-chan time.Time
			if *fps > 0 {
				t := time.NewTicker(time.Duration(float64(time.Second) / *fps))
				defer t.Stop()
				tick = t.C
			}
			for _, f := range files {
				img, err := loadImage(f, a.env.stdin)
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
				if !yield(img) {
					return
				}
			}
		})
		o := newOut(a.output, a.env.stdout, []string{"KIND", "FRAME", "FILE", "RESULT"},
			[]string{"kind", "frame_id", "file", "label", "score", "detections", "skipped", "camera_id", "rule", "counts", "error_code", "error_message"})
		o.live = []int{7, 5, 30}
		s := &streamPrinter{a: a, o: o, files: files}
		k := int32(*topK)
		if *detect {
			err = c.DetectStream(ctx, &pb.DetectStreamConfig{Model: &pb.ModelSpec{Name: *model}, Options: opts}, frames,
				func(m *pb.DetectStreamResponse) error { return s.detect(m) })
		} else {
			err = c.ClassifyStream(ctx, &pb.ClassifyStreamConfig{Model: &pb.ModelSpec{Name: *model}, TopK: &k, Options: opts}, frames,
				func(m *pb.ClassifyStreamResponse) error { return s.classify(m) })
		}
		if cerr := o.close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = readErr
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
	return &inputError{codeName(codes.Code(e.Code)), e.Message}
}
