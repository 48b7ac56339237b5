package dashboard

import (
	"context"
	"sync"
	"time"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// feedSize is how many alerts the feed keeps, newest first.
const feedSize = 50

// alert is one alert in the feed, with the frame that raised it.
type alert struct {
	Seq     uint64    `json:"seq"`
	Camera  string    `json:"camera"`
	Rule    string    `json:"rule"`
	Label   string    `json:"label"`
	Score   float32   `json:"score"`
	FrameID uint64    `json:"frame_id"`
	Time    time.Time `json:"time"`
	// Thumb is the frame's URL, empty when the frame has left the camera's ring.
	Thumb string `json:"thumb,omitempty"`
	W     int    `json:"w,omitempty"`
	H     int    `json:"h,omitempty"`
	Dets  []det  `json:"dets,omitempty"`

	frame *frame
}

// feed is the alert feed and the state of the WatchAlerts call.
type feed struct {
	mu       sync.Mutex
	seq      uint64
	alerts   []*alert // newest first
	watching bool
	problem  string
}

// watchAlerts follows WatchAlerts for the dashboard's cameras, watching again with
// backoff whenever the call ends.
func (d *Dashboard) watchAlerts(ctx context.Context) {
	b := newBackoff(500*time.Millisecond, 8*time.Second)
	req := &pb.WatchAlertsRequest{}
	for _, c := range d.cameras {
		req.CameraIds = append(req.CameraIds, c.Name)
	}
	for ctx.Err() == nil {
		err := d.client.WatchAlerts(ctx, req, func() {
			d.feed.mu.Lock()
			d.feed.watching, d.feed.problem = true, ""
			d.feed.mu.Unlock()
			b.reset()
			d.log.Info("watching alerts", "cameras", req.CameraIds)
		}, func(a *pb.Alert) error {
			d.addAlert(a)
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errServerEnded // not "OK: " on the page
		}
		wait := b.next()
		d.feed.mu.Lock()
		d.feed.watching, d.feed.problem = false, describe(err)
		d.feed.mu.Unlock()
		d.log.Warn("WatchAlerts ended", "err", describe(err), "retry_in", wait.Round(time.Millisecond))
		d.retryWait(ctx, wait)
	}
}

// addAlert puts an alert at the top of the feed and tells the pages at once.
func (d *Dashboard) addAlert(a *pb.Alert) {
	x := &alert{Camera: a.CameraId, Rule: a.Rule, Label: a.Label, Score: a.Score, FrameID: a.FrameId,
		Time: a.CaptureTime.AsTime()}
	if c := d.camera(a.CameraId); c != nil {
		if f, ds := c.frameByID(a.FrameId); f != nil {
			x.frame, x.W, x.H, x.Dets = f, f.w, f.h, ds
		}
	}
	d.feed.mu.Lock()
	d.feed.seq++
	x.Seq = d.feed.seq
	if x.frame != nil {
		x.Thumb = d.alertURL(x.Seq)
	}
	d.feed.alerts = append([]*alert{x}, d.feed.alerts[:min(len(d.feed.alerts), feedSize-1)]...)
	d.hub.publish("alert", x)
	// Once x is in the feed, alertDets may set its boxes: read them under the lock.
	boxless := x.frame != nil && x.Dets == nil
	d.feed.mu.Unlock()
	d.log.Info("alert", "camera", x.Camera, "rule", x.Rule, "label", x.Label, "score", x.Score, "frame", x.FrameID,
		"since_capture", time.Since(x.Time).Round(time.Millisecond))
	if boxless { // the frame's answer may have come in meanwhile (alertDets checks again)
		if _, ds := d.camera(x.Camera).frameByID(x.FrameID); ds != nil {
			d.alertDets(x.Camera, x.FrameID, ds)
		}
	}
}

// alertDets gives the alerts on a frame that came before the frame's answer their
// boxes, and tells the pages.
func (d *Dashboard) alertDets(camera string, frameID uint64, ds []det) {
	d.feed.mu.Lock()
	defer d.feed.mu.Unlock()
	for _, a := range d.feed.alerts {
		if a.Camera == camera && a.FrameID == frameID && a.frame != nil && a.Dets == nil {
			a.Dets = ds
			d.hub.publish("alertdets", map[string]any{"seq": a.Seq, "dets": ds})
		}
	}
}

// alertFrame returns the frame of the alert with sequence number seq.
func (d *Dashboard) alertFrame(seq uint64) *frame {
	d.feed.mu.Lock()
	defer d.feed.mu.Unlock()
	for _, a := range d.feed.alerts {
		if a.Seq == seq {
			return a.frame
		}
	}
	return nil
}

// feedStatus is the feed's state for the page.
type feedStatus struct {
	Watching bool   `json:"watching"`
	Problem  string `json:"problem,omitempty"`
}

func (d *Dashboard) feedStatus() (feedStatus, []*alert) {
	d.feed.mu.Lock()
	defer d.feed.mu.Unlock()
	return feedStatus{d.feed.watching, d.feed.problem}, append([]*alert(nil), d.feed.alerts...)
}
