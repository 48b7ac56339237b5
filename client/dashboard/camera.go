package dashboard

import (
	"context"
	"errors"
	"iter"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// Camera states, as the page shows them.
const (
	camStarting     = "starting"
	camLive         = "live"
	camReconnecting = "reconnecting"
	camSourceError  = "source error"
	// camRefused: atelierd refused the stream's set-up (INVALID_ARGUMENT); the same
	// set-up would be refused again, so it is tried again only once the models change.
	camRefused = "refused"
)

// camera is one camera: a source read like a live camera, and a DetectStream that
// carries its frames to atelierd whenever both are up.
type camera struct {
	Camera
	d     *Dashboard
	rules []*pb.AlertRule

	wake chan struct{} // a new frame, or the source went down; one reader

	mu        sync.Mutex
	ring      [ringSize]*frame // recent frames by id % ringSize
	latest    *frame           // newest frame read
	shown     *frame           // newest frame answered, with dets
	dets      map[uint64][]det // detections of the frames in the ring
	sourceErr string           // why the source is down, "" when it is up
	streamErr string           // why the stream is down, "" when it is up
	state     string
	answered  []time.Time // answer times over the last few seconds, for the rate
	lag       time.Duration
	counts    struct{ sent, answered, skipped, failed uint64 }
	summary   *pb.TallySummary
	frameErr  string // the latest per-frame error
}

// det is one detected garment, as the page draws it.
type det struct {
	Box   [4]float32 `json:"box"` // x_min, y_min, x_max, y_max in the frame's pixels
	Type  string     `json:"type"`
	Label string     `json:"label,omitempty"`
	Score float32    `json:"score"`
}

// errServerEnded is a stream or a watch that atelierd ended without an error.
var errServerEnded = errors.New("atelierd ended the call")

func newCamera(d *Dashboard, c Camera, rules []*pb.AlertRule) *camera {
	return &camera{Camera: c, d: d, rules: rules, wake: make(chan struct{}, 1), dets: map[uint64][]det{}, state: camStarting}
}

func (c *camera) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// readSource keeps the source running, reopening it with backoff when it fails.
func (c *camera) readSource(ctx context.Context) {
	var id uint64
	b := newBackoff(time.Second, 30*time.Second)
	for ctx.Err() == nil {
		err := readLoop(ctx, c.Source, c.d.cfg.FPS, func(img *pb.Image, w, h int) {
			id++
			f := &frame{id: id, captured: time.Now(), image: img, w: w, h: h}
			c.mu.Lock()
			if c.sourceErr != "" {
				c.d.log.Info("camera source is up", "camera", c.Name, "source", c.Source)
				c.sourceErr = ""
			}
			if old := c.ring[id%ringSize]; old != nil {
				delete(c.dets, old.id)
			}
			c.ring[id%ringSize], c.latest = f, f
			c.mu.Unlock()
			b.reset()
			c.signal()
		})
		if ctx.Err() != nil {
			return
		}
		wait := b.next()
		c.mu.Lock()
		c.sourceErr, c.state = err.Error(), camSourceError
		c.mu.Unlock()
		c.d.log.Error("camera source failed", "camera", c.Name, "source", c.Source, "err", err, "retry_in", wait)
		c.signal()
		sleep(ctx, wait)
	}
}

// stream runs DetectStream whenever the source is up, reconnecting with backoff.
func (c *camera) stream(ctx context.Context) {
	b := newBackoff(500*time.Millisecond, 8*time.Second)
	cfg := &pb.DetectStreamConfig{
		MinScore: ptr(float32(c.d.cfg.MinScore)),
		Options: &pb.StreamOptions{
			CameraId: c.Name, Policy: pb.FramePolicy_FRAME_POLICY_LATEST, QueueSize: 2,
			TallyWindow: durationpb.New(c.d.cfg.TallyWindow), SummaryInterval: durationpb.New(time.Second),
		},
	}
	for ctx.Err() == nil {
		if !c.waitSource(ctx) {
			return
		}
		_, listed, relisted := c.d.modelLabels()
		cfg.Options.AlertRules = c.d.streamRules(c.rules)
		opened := false
		err := c.d.client.DetectStream(ctx, cfg, c.frames(ctx), func(m *pb.DetectStreamResponse) error {
			opened = true
			if c.onMessage(m) {
				b.reset()
			}
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		if !opened && status.Code(err) == codes.InvalidArgument {
			c.refused(ctx, err, listed, relisted)
			b.reset()
			continue
		}
		if err == nil {
			c.mu.Lock()
			down := c.sourceErr != ""
			c.mu.Unlock()
			if down {
				continue // the source went down; the stream ended cleanly
			}
			// atelierd ended the stream while frames were coming: retry with backoff,
			// as after an error, not at once and again and again.
			err = errServerEnded
		}
		wait := b.next()
		msg := describe(err)
		c.mu.Lock()
		c.streamErr = msg
		if c.sourceErr == "" {
			c.state = camReconnecting
		}
		c.mu.Unlock()
		c.d.log.Warn("camera stream ended", "camera", c.Name, "err", msg, "retry_in", wait.Round(time.Millisecond))
		c.d.retryWait(ctx, wait)
	}
}

// refused waits after atelierd refused the stream's set-up: until the models are
// listed, if they were not when the stream opened (its rules were not checked
// against them yet); else, saying so on the tile, until their labels change, as the
// same set-up would be refused again.
func (c *camera) refused(ctx context.Context, err error, listed bool, relisted <-chan struct{}) {
	if listed {
		msg := "atelierd refused this camera's stream: " + describe(err) + ". Not tried again until atelierd's models change."
		c.mu.Lock()
		c.streamErr = msg
		if c.sourceErr == "" {
			c.state = camRefused
		}
		c.mu.Unlock()
		c.d.log.Error("camera stream refused", "camera", c.Name, "err", describe(err))
	}
	waitModels(ctx, relisted)
}

// waitSource waits until the source has produced a frame and is not down.
func (c *camera) waitSource(ctx context.Context) bool {
	for {
		c.mu.Lock()
		up := c.sourceErr == "" && c.latest != nil
		c.mu.Unlock()
		if up {
			return true
		}
		select {
		case <-c.wake:
		case <-ctx.Done():
			return false
		}
	}
}

// frames yields each new frame once, until the source goes down or ctx is done.
// Frames that arrive while the stream is busy are not queued here: the stream sends
// the newest (the server's latest policy drops stale ones too).
func (c *camera) frames(ctx context.Context) iter.Seq[*pb.StreamFrame] {
	return func(yield func(*pb.StreamFrame) bool) {
		var last uint64
		for {
			c.mu.Lock()
			f, down := c.latest, c.sourceErr != ""
			if !down && f != nil && f.id > last {
				c.counts.sent++
			}
			c.mu.Unlock()
			if down {
				return
			}
			if f != nil && f.id > last {
				last = f.id
				if !yield(&pb.StreamFrame{FrameId: f.id, CaptureTime: timestamppb.New(f.captured), Image: f.image}) {
					return
				}
			}
			select {
			case <-c.wake:
			case <-ctx.Done():
				return
			}
		}
	}
}

// onMessage takes one message of the stream; it reports whether it was a frame answer.
func (c *camera) onMessage(m *pb.DetectStreamResponse) bool {
	f, ds, answered := c.take(m)
	if f != nil {
		c.d.alertDets(c.Name, f.id, ds) // an alert on this frame may have come first
	}
	return answered
}

// take records one message; for a frame with detections it returns the frame and them.
func (c *camera) take(m *pb.DetectStreamResponse) (*frame, []det, bool) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch x := m.Message.(type) {
	case *pb.DetectStreamResponse_Summary:
		c.summary = x.Summary
		return nil, nil, false
	case *pb.DetectStreamResponse_Result:
		r := x.Result
		c.counts.answered++
		c.state, c.streamErr = camLive, ""
		switch {
		case r.Skipped:
			c.counts.skipped++
			return nil, nil, true
		case r.Error != nil:
			c.counts.failed++
			c.frameErr = r.Error.Message
			return nil, nil, true
		}
		f := c.ring[r.FrameId%ringSize]
		if f == nil || f.id != r.FrameId {
			return nil, nil, true // older than the ring
		}
		ds := make([]det, 0, len(r.Detections))
		for _, d := range r.Detections {
			b := d.GetBox()
			x := det{Box: [4]float32{b.GetXMin(), b.GetYMin(), b.GetXMax(), b.GetYMax()}, Type: d.GarmentType, Score: d.Score}
			if p := d.GetClassification().GetPredictions(); len(p) > 0 {
				x.Label = p[0].Label
				c.d.learnType(x.Label, x.Type)
			}
			ds = append(ds, x)
		}
		c.dets[f.id] = ds
		c.shown = f
		c.lag = now.Sub(f.captured)
		c.answered = append(c.answered, now)
		return f, ds, true
	}
	return nil, nil, false
}

// frameByID returns a frame still in the ring and its detections.
func (c *camera) frameByID(id uint64) (*frame, []det) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.ring[id%ringSize]
	if f == nil || f.id != id {
		return nil, nil
	}
	return f, c.dets[id]
}

// camStatus is a camera's line on the page.
type camStatus struct {
	State   string  `json:"state"`
	Problem string  `json:"problem,omitempty"`
	FPS     float64 `json:"fps"`
	LagMS   int64   `json:"lag_ms"` // capture to answer, of the last answer
	// AgeMS is how old the frame the tile shows is (now minus its capture): it keeps
	// growing when answers stop, where LagMS stays as it was. 0 before the first.
	AgeMS    int64  `json:"age_ms"`
	Sent     uint64 `json:"sent"`
	Answered uint64 `json:"answered"`
	Skipped  uint64 `json:"skipped"`
	Failed   uint64 `json:"failed"`
	FrameErr string `json:"frame_error,omitempty"`
	Frames   uint64 `json:"window_frames"`
}

// status returns the camera's status and its latest tallies.
func (c *camera) status(now time.Time) (camStatus, []*pb.CategoryCount) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cut := 0
	for cut < len(c.answered) && now.Sub(c.answered[cut]) > 5*time.Second {
		cut++
	}
	c.answered = c.answered[cut:]
	s := camStatus{State: c.state, LagMS: c.lag.Milliseconds(), Sent: c.counts.sent, Answered: c.counts.answered,
		Skipped: c.counts.skipped, Failed: c.counts.failed, FrameErr: c.frameErr}
	if c.shown != nil {
		s.AgeMS = max(0, now.Sub(c.shown.captured).Milliseconds())
	}
	if n := len(c.answered); n > 1 {
		s.FPS = float64(n-1) / c.answered[n-1].Sub(c.answered[0]).Seconds()
	}
	switch {
	case c.sourceErr != "":
		s.State, s.Problem = camSourceError, c.sourceErr
	case c.streamErr != "":
		s.Problem = c.streamErr
	}
	if s.State != camLive {
		s.FPS = 0
	}
	var counts []*pb.CategoryCount
	if c.summary != nil {
		s.Frames, counts = c.summary.Frames, c.summary.Counts
	}
	return s, counts
}

// view is the newest answered frame, for the page.
type view struct {
	ID    uint64 `json:"id"`
	Src   string `json:"src"` // the frame's URL (the page's base is the dashboard's)
	W     int    `json:"w"`
	H     int    `json:"h"`
	LagMS int64  `json:"lag_ms"`
	Dets  []det  `json:"dets"`
}

// newest returns the newest answered frame's view, if it is newer than after.
func (c *camera) newest(after uint64) (view, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.shown
	if f == nil || f.id <= after {
		return view{}, false
	}
	return view{ID: f.id, Src: c.d.frameURL(c.Name, f.id), W: f.w, H: f.h, LagMS: c.lag.Milliseconds(), Dets: c.dets[f.id]}, true
}

func ptr[T any](v T) *T { return &v }
