package stream

import (
	"strings"
	"testing"
	"time"
)

func TestHubFilters(t *testing.T) {
	hub := NewHub(8)
	cases := []struct {
		name   string
		filter Filter
		want   []uint64 // frame ids received, from the alerts published below
	}{
		{"all", Filter{}, []uint64{1, 2, 3}},
		{"one camera", Filter{Cameras: []string{"door"}}, []uint64{1, 3}},
		{"one rule", Filter{Rules: []string{"bags"}}, []uint64{2, 3}},
		{"camera and rule", Filter{Cameras: []string{"door"}, Rules: []string{"bags"}}, []uint64{3}},
		{"nothing matches", Filter{Cameras: []string{"roof"}}, nil},
	}
	subs := make([]*Subscription, len(cases))
	for i, tc := range cases {
		subs[i] = hub.Subscribe(tc.filter)
		defer subs[i].Close()
	}
	hub.Publish(Alert{CameraID: "door", Rule: "dresses", FrameID: 1})
	hub.Publish(Alert{CameraID: "till", Rule: "bags", FrameID: 2})
	hub.Publish(Alert{CameraID: "door", Rule: "bags", FrameID: 3})
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []uint64
			for len(subs[i].Alerts()) > 0 {
				got = append(got, (<-subs[i].Alerts()).FrameID)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got frames %v, want %v", got, tc.want)
			}
			for j := range got {
				if got[j] != tc.want[j] {
					t.Fatalf("got frames %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestSlowWatcherIsCutOff publishes far more alerts than a watcher that never reads
// can buffer: publishing never blocks, the watcher that keeps up gets everything, and
// the slow one is told it lost alerts.
func TestSlowWatcherIsCutOff(t *testing.T) {
	hub := NewHub(4)
	slow, fast := hub.Subscribe(Filter{}), hub.Subscribe(Filter{})
	defer slow.Close()
	defer fast.Close()
	start := time.Now()
	for i := range 1000 {
		hub.Publish(Alert{FrameID: uint64(i)})
		if a := <-fast.Alerts(); a.FrameID != uint64(i) {
			t.Fatalf("fast watcher got frame %d, want %d", a.FrameID, i)
		}
	}
	select {
	case <-slow.Lost():
	default:
		t.Fatal("the slow watcher was not cut off")
	}
	if len(slow.Alerts()) != 4 {
		t.Fatalf("slow watcher kept %d alerts, want its buffer of 4", len(slow.Alerts()))
	}
	if watchers, lost := hub.Stats(); watchers != 1 || lost != 1 {
		t.Fatalf("got %d watchers and %d lost, want 1 and 1", watchers, lost)
	}
	t.Logf("1000 alerts published in %v", time.Since(start))
}

// TestFilterValidate: a watch's filter holds at most MaxFilterNames camera ids or
// rules, none longer than MaxNameBytes; the messages name the API's fields.
func TestFilterValidate(t *testing.T) {
	many := make([]string, MaxFilterNames+1)
	long := strings.Repeat("n", MaxNameBytes+1)
	for _, tc := range []struct {
		name   string
		filter Filter
		want   string // "" for valid
	}{
		{"all", Filter{}, ""},
		{"at the limits", Filter{Cameras: many[1:], Rules: []string{long[1:]}}, ""},
		{"too many cameras", Filter{Cameras: many}, "1001 camera ids or rules is over the limit of 1000"},
		{"too many rules", Filter{Rules: many}, "1001 camera ids or rules is over the limit of 1000"},
		{"a long camera id", Filter{Cameras: []string{"door", long}}, "camera_ids[1] of 257 bytes is over the limit of 256"},
		{"a long rule", Filter{Rules: []string{long}}, "rules[0] of 257 bytes is over the limit of 256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkInvalid(t, tc.filter.Validate(), tc.want)
		})
	}
}
