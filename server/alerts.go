package server

import (
	"fmt"
	"log/slog"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/stream"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

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
	f := watchFilter(req)
	if err := f.Validate(); err != nil {
		return toStatus(err)
	}
	sub := s.Hub.Subscribe(f)
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

// watchFilter is a WatchAlerts request's filter, for stream.Filter.Validate and the hub.
func watchFilter(req *pb.WatchAlertsRequest) stream.Filter {
	return stream.Filter{Cameras: req.GetCameraIds(), Rules: req.GetRules()}
}
