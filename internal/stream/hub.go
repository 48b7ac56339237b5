package stream

import (
	"fmt"
	"sync"

	"github.com/atelier-vision/atelier/internal/errkind"
)

// DefaultWatchBuffer is how many alerts a watcher may fall behind before it is cut off.
const DefaultWatchBuffer = 256

// Hub fans the alerts of every stream out to the watchers (WatchAlerts). Publishing
// never blocks: each watcher has its own bounded buffer, and a watcher that falls a
// whole buffer behind is cut off (Subscription.Lost) instead of stalling the cameras.
type Hub struct {
	buffer int

	mu   sync.Mutex
	subs map[*Subscription]struct{}
	lost int64
}

// NewHub returns a hub whose watchers buffer up to buffer alerts; 0 means DefaultWatchBuffer.
func NewHub(buffer int) *Hub {
	if buffer <= 0 {
		buffer = DefaultWatchBuffer
	}
	return &Hub{buffer: buffer, subs: map[*Subscription]struct{}{}}
}

// MaxFilterNames bounds the camera ids and the rule names of one Filter.
const MaxFilterNames = 1000

// Filter selects alerts by camera and rule name; an empty list selects all.
type Filter struct {
	Cameras []string
	Rules   []string
}

// Validate checks a watcher's filter before it subscribes: at most MaxFilterNames
// camera ids or rules, none over MaxNameBytes. A watch keeps its filter until it ends,
// so a name no alert can carry (streams refuse camera ids and rule names over
// MaxNameBytes) would only hold memory: up to the largest message per watcher, rather
// than 2 x 1000 x 256 bytes. The messages name the API's fields.
func (f Filter) Validate() error {
	if n := max(len(f.Cameras), len(f.Rules)); n > MaxFilterNames {
		return fmt.Errorf("%w: %d camera ids or rules is over the limit of %d", errkind.Invalid, n, MaxFilterNames)
	}
	for _, l := range []struct {
		field string
		names []string
	}{{"camera_ids", f.Cameras}, {"rules", f.Rules}} {
		for i, n := range l.names {
			if len(n) > MaxNameBytes {
				return fmt.Errorf("%w: %s[%d] of %d bytes is over the limit of %d (no camera id or rule name is longer)",
					errkind.Invalid, l.field, i, len(n), MaxNameBytes)
			}
		}
	}
	return nil
}

// filterSet is a Filter as sets: Publish checks every watcher's filter on every alert
// while holding the hub's lock, which every camera that raises an alert waits for, so
// a watcher listing 1000 cameras and rules must cost a lookup, not a scan of its lists.
type filterSet struct{ cameras, rules map[string]bool }

func newFilterSet(f Filter) filterSet {
	set := func(names []string) map[string]bool {
		if len(names) == 0 {
			return nil // selects all
		}
		m := make(map[string]bool, len(names))
		for _, n := range names {
			m[n] = true
		}
		return m
	}
	return filterSet{cameras: set(f.Cameras), rules: set(f.Rules)}
}

func (f filterSet) match(a Alert) bool {
	return (f.cameras == nil || f.cameras[a.CameraID]) && (f.rules == nil || f.rules[a.Rule])
}

// Subscription is one watcher's view of the hub.
type Subscription struct {
	hub    *Hub
	filter filterSet
	alerts chan Alert
	lost   chan struct{}
}

// Subscribe registers a watcher for the alerts that f selects, from now on. Close it
// when done.
func (h *Hub) Subscribe(f Filter) *Subscription {
	s := &Subscription{hub: h, filter: newFilterSet(f), alerts: make(chan Alert, h.buffer), lost: make(chan struct{})}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Alerts delivers the subscription's alerts in publishing order.
func (s *Subscription) Alerts() <-chan Alert { return s.alerts }

// Lost is closed when the watcher fell a whole buffer behind and was cut off; the
// alerts already buffered can still be read.
func (s *Subscription) Lost() <-chan struct{} { return s.lost }

// Close unregisters the watcher.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	delete(s.hub.subs, s)
	s.hub.mu.Unlock()
}

// Publish hands a to every watcher whose filter selects it, without blocking.
func (h *Hub) Publish(a Alert) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if !s.filter.match(a) {
			continue
		}
		select {
		case s.alerts <- a:
		default:
			delete(h.subs, s)
			close(s.lost)
			h.lost++
		}
	}
}

// Stats returns the number of watchers and how many were cut off so far.
func (h *Hub) Stats() (watchers int, lost int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs), h.lost
}
