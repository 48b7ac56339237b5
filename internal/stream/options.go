package stream

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/atelier-vision/atelier/internal/errkind"
)

// Limits and defaults, documented in proto/atelier/v1/stream.proto.
const (
	DefaultQueueSize   = 8
	MaxQueueSize       = 64
	DefaultTallyWindow = time.Hour
	MaxTallyWindow     = 24 * time.Hour
	MinSummaryInterval = 10 * time.Millisecond
	MaxRules           = 16
	MaxCategories      = 64
	// MaxNameBytes bounds a camera id, a rule's name and a watched category: they are
	// echoed in every summary and alert, and an alert goes to every watcher, whose
	// client refuses a message over its limit (4 MiB by default) and loses its watch.
	MaxNameBytes = 256
	// Depth is how many frames of one stream are processed at once.
	Depth = 4
	// MaxPendingSkips bounds the skip reports in the queue; beyond it the receive loop
	// waits, as under PolicyBlock. As many again may wait in the pipeline for the
	// frames in flight ahead of them.
	MaxPendingSkips = 256
)

// Policy says what happens when frames arrive faster than they are served.
type Policy int

const (
	// PolicyBlock stops reading frames while the queue is full: nothing is dropped.
	PolicyBlock Policy = iota
	// PolicyLatest evicts the oldest queued frame for a new one and reports it skipped.
	PolicyLatest
)

// String names the policy as the API does.
func (p Policy) String() string {
	if p == PolicyLatest {
		return "latest"
	}
	return "block"
}

// Options configures one stream.
type Options struct {
	// CameraID names the camera in summaries and alerts.
	CameraID string
	Policy   Policy
	// QueueSize bounds the queued frames, 1..MaxQueueSize; 0 means DefaultQueueSize.
	QueueSize int
	// TallyWindow is the sliding window of the tallies, in (0, MaxTallyWindow]. The
	// handler fills DefaultTallyWindow when the client leaves it unset; an explicit 0
	// is refused, not taken for the default.
	TallyWindow time.Duration
	// Summaries turns on a Summary every SummaryInterval (at least MinSummaryInterval)
	// and once at the end; without it there are none and SummaryInterval is 0.
	Summaries       bool
	SummaryInterval time.Duration
	Rules           []Rule
}

// Rule fires an alert once per appearance of one of its categories.
type Rule struct {
	Name       string
	Categories []string
	// MinScore is the lowest score that counts as seeing a category, in [0, 1].
	MinScore float32
	// MinConsecutive is how many processed frames in a row must show a category; 0 means 1.
	MinConsecutive int
	// Cooldown is the capture time that must pass after an alert before the rule fires again.
	Cooldown time.Duration
}

// WithDefaults returns o with a zero QueueSize (the API's "0 means 8") and the rules'
// zero names and MinConsecutive replaced by the defaults.
func (o Options) WithDefaults() Options {
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	rules := make([]Rule, len(o.Rules))
	for i, r := range o.Rules {
		if r.Name == "" {
			r.Name = fmt.Sprintf("rule-%d", i+1)
		}
		if r.MinConsecutive == 0 {
			r.MinConsecutive = 1
		}
		rules[i] = r
	}
	o.Rules = rules
	return o
}

// CheckCategories refuses an alert rule whose category none of the stream's models
// names: a typo ("Dres") would give a rule that never fires, silently. labels holds
// the labels of each model that names what a frame shows, by the model's name and
// version ("classifier:1"); a model without labels names its classes class_N, and then
// any category passes.
func (o Options) CheckCategories(labels map[string][]string) error {
	known := map[string]bool{}
	var models []string
	for m, ls := range labels {
		if len(ls) == 0 {
			return nil
		}
		for _, l := range ls {
			known[l] = true
		}
		models = append(models, m)
	}
	if len(models) == 0 {
		return nil
	}
	slices.Sort(models)
	for i, r := range o.Rules {
		for _, c := range r.Categories {
			if !known[c] {
				var names []string
				for _, m := range models {
					names = append(names, fmt.Sprintf("%s: %s", m, listed(labels[m], 32)))
				}
				return fmt.Errorf("%w: alert rule %d (%q): no model of this stream names the category %q (%s)",
					errkind.Invalid, i, r.Name, c, strings.Join(names, "; "))
			}
		}
	}
	return nil
}

// listed joins up to n labels, saying how many more there are.
func listed(labels []string, n int) string {
	if len(labels) <= n {
		return strings.Join(labels, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(labels[:n], ", "), len(labels)-n)
}

// Validate checks the options' ranges; it accepts the zero values that WithDefaults
// fills, and no others: a zero TallyWindow or an explicit zero SummaryInterval is out
// of range.
func (o Options) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{errkind.Invalid}, args...)...)
	}
	switch {
	case o.Policy != PolicyBlock && o.Policy != PolicyLatest:
		return bad("unknown frame policy %d", o.Policy)
	case len(o.CameraID) > MaxNameBytes:
		return bad("camera_id of %d bytes is over the limit of %d", len(o.CameraID), MaxNameBytes)
	case o.QueueSize < 0 || o.QueueSize > MaxQueueSize:
		return bad("queue_size %d is out of range 1..%d (0 means %d)", o.QueueSize, MaxQueueSize, DefaultQueueSize)
	case o.TallyWindow <= 0 || o.TallyWindow > MaxTallyWindow:
		return bad("tally_window %v is out of range (0, %v] (leave it unset for %v)", o.TallyWindow, MaxTallyWindow, DefaultTallyWindow)
	case o.Summaries && o.SummaryInterval < MinSummaryInterval:
		return bad("summary_interval %v is below %v (leave it unset for no summaries)", o.SummaryInterval, MinSummaryInterval)
	case !o.Summaries && o.SummaryInterval != 0:
		return bad("summary_interval %v is set with summaries off", o.SummaryInterval)
	case len(o.Rules) > MaxRules:
		return bad("%d alert rules is over the limit of %d", len(o.Rules), MaxRules)
	}
	names := map[string]bool{}
	for i, r := range o.Rules {
		switch {
		case len(r.Name) > MaxNameBytes: // before the messages below echo it
			return bad("alert rule %d: name of %d bytes is over the limit of %d", i, len(r.Name), MaxNameBytes)
		case len(r.Categories) == 0 || len(r.Categories) > MaxCategories:
			return bad("alert rule %d (%q) needs 1 to %d categories, has %d", i, r.Name, MaxCategories, len(r.Categories))
		case math.IsNaN(float64(r.MinScore)) || r.MinScore < 0 || r.MinScore > 1:
			return bad("alert rule %d (%q): min_score %v is outside [0, 1]", i, r.Name, r.MinScore)
		case r.MinConsecutive < 0:
			return bad("alert rule %d (%q): min_consecutive_frames %d is negative", i, r.Name, r.MinConsecutive)
		case r.Cooldown < 0:
			return bad("alert rule %d (%q): cooldown %v is negative", i, r.Name, r.Cooldown)
		case r.Name != "" && names[r.Name]:
			return bad("alert rule name %q is used twice", r.Name)
		}
		for j, c := range r.Categories {
			switch {
			case c == "":
				return bad("alert rule %d (%q) has an empty category", i, r.Name)
			case len(c) > MaxNameBytes:
				return bad("alert rule %d (%q): category %d of %d bytes is over the limit of %d", i, r.Name, j, len(c), MaxNameBytes)
			}
		}
		names[r.Name] = true
	}
	return nil
}
