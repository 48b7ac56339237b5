package server

import (
	"fmt"
	"log/slog"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/stream"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// maxWatchFilter bounds the camera ids and rule names of one WatchAlerts request.
const maxWatchFilter = 1000

// AlertServer implements atelier.v1.AlertService on the hub that every stream
// publishes its alerts to.
type AlertServer struct {
	pb.UnsafeAlertServiceServer
	Hub *stream.Hub
	Log *slog.Logger
}

// WatchAlerts sends the alerts the request's filter selects, from the moment the
// response headers are sent until the client cancels. A watcher that falls a whole
// buffer behind is cut off with ResourceExhausted rather than stalling the cameras.
func (s *AlertServer) WatchAlerts(req *pb.WatchAlertsRequest, ss pb.AlertService_WatchAlertsServer) error {
	ctx := ss.Context()
	if n := max(len(req.GetCameraIds()), len(req.GetRules())); n > maxWatchFilter {
		return toStatus(fmt.Errorf("%w: %d camera ids or rules is over the limit of %d", errkind.Invalid, n, maxWatchFilter))
	}
	// A watch keeps its filter until it ends, so a name no alert can carry (streams
	// refuse camera ids and rule names over stream.MaxNameBytes) would only hold memory:
	// up to the largest message per watcher, rather than 2 x 1000 x 256 bytes.
	for _, f := range []struct {
		field string
		names []string
	}{{"camera_ids", req.GetCameraIds()}, {"rules", req.GetRules()}} {
		for i, n := range f.names {
			if len(n) > stream.MaxNameBytes {
				return toStatus(fmt.Errorf("%w: %s[%d] of %d bytes is over the limit of %d (no camera id or rule name is longer)",
					errkind.Invalid, f.field, i, len(n), stream.MaxNameBytes))
			}
		}
	}
	sub := s.Hub.Subscribe(stream.Filter{Cameras: req.GetCameraIds(), Rules: req.GetRules()})
	defer sub.Close()
	// The headers tell the client that the subscription is in place.
	if err := ss.SendHeader(nil); err != nil {
		return toStatus(err)
	}
	send := func(a stream.Alert) error { return ss.Send(&pb.WatchAlertsResponse{Alert: alertToProto(a)}) }
	for {
		select {
		case a := <-sub.Alerts():
			if err := send(a); err != nil {
				return toStatus(err)
			}
		case <-sub.Lost():
			for len(sub.Alerts()) > 0 {
				if err := send(<-sub.Alerts()); err != nil {
					return toStatus(err)
				}
			}
			return toStatus(fmt.Errorf("%w: this watcher fell more than %d alerts behind and was cut off; alerts after the last one received were lost, watch again",
				errkind.Overloaded, cap(sub.Alerts())))
		case <-ctx.Done():
			return toStatus(ctx.Err())
		}
	}
}
