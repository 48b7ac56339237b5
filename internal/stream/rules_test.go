package stream

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/internal/errkind"
)

// TestRuleFiresOncePerAppearance plays sequences of frames, one a second: 'D' shows a
// Dress at 0.9, 'd' a Dress at 0.5, 'c' a Coat, '.' nothing. Frame ids start at 1.
func TestRuleFiresOncePerAppearance(t *testing.T) {
	cases := []struct {
		name   string
		rule   Rule
		frames string
		want   []uint64 // frames that fire
	}{
		{"fires on the third frame", Rule{MinConsecutive: 3}, "..DDDDDD..", []uint64{5}},
		{"one frame is enough by default", Rule{}, "D.D", []uint64{1, 3}},
		{"too short an appearance", Rule{MinConsecutive: 3}, "DD.DD.DD", nil},
		{"two appearances, two alerts", Rule{MinConsecutive: 2}, "DDD..DD", []uint64{2, 7}},
		{"a low score breaks the run", Rule{MinScore: 0.6, MinConsecutive: 2}, "DdDDd", []uint64{4}},
		{"a low min score accepts it", Rule{MinScore: 0.4, MinConsecutive: 2}, "DdDDd", []uint64{2}},
		{"other categories do not count", Rule{MinConsecutive: 1}, "ccc", nil},
		{"cooldown holds the next appearance", Rule{Cooldown: 5 * time.Second}, "D.D.D.D", []uint64{1, 7}},
		{"an appearance that outlasts the cooldown fires after it", Rule{Cooldown: 3 * time.Second}, "D.DDDD", []uint64{1, 4}},
		{"a long appearance fires once", Rule{Cooldown: time.Second}, "DDDDDDDD", []uint64{1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.rule.Categories = []string{"Dress", "Gown"}
			tc.rule = Options{Rules: []Rule{tc.rule}}.WithDefaults().Rules[0]
			st := ruleState{rule: tc.rule}
			start := time.Unix(1000, 0)
			var got []uint64
			for i, c := range tc.frames {
				var obs Observation
				switch c {
				case 'D':
					obs.Seen = []Sighting{{"Coat", 0.05}, {"Dress", 0.9}}
				case 'd':
					obs.Seen = []Sighting{{"Dress", 0.5}}
				case 'c':
					obs.Seen = []Sighting{{"Coat", 0.99}}
				}
				id := uint64(i + 1)
				if a, ok := st.observe("door", id, start.Add(time.Duration(i)*time.Second), obs); ok {
					if a.FrameID != id || a.Label != "Dress" || a.Rule != "rule-1" || a.CameraID != "door" {
						t.Fatalf("frame %d: got alert %+v", id, a)
					}
					got = append(got, id)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("%s: got alerts on frames %v, want %v", tc.frames, got, tc.want)
			}
		})
	}
}

func TestTallySlidingWindow(t *testing.T) {
	window := 64 * time.Second // one-second buckets
	base := time.Unix(10_000, 0)
	cases := []struct {
		name    string
		seconds []int // capture second of each frame; even seconds show a Dress, odd a Coat
		want    string
		frames  uint64
	}{
		{"empty", nil, "[]", 0},
		{"all inside", []int{0, 1, 2, 3, 4}, "[{Dress 3} {Coat 2}]", 5},
		{"the old ones slide out", []int{0, 1, 2, 100, 102, 103}, "[{Dress 2} {Coat 1}]", 3},
		{"a late frame inside the window counts", []int{100, 101, 90}, "[{Dress 2} {Coat 1}]", 3},
		{"a frame older than the window does not", []int{200, 100}, "[{Dress 1}]", 1},
		{"exactly one window back still counts", []int{0, 64}, "[{Dress 2}]", 2},
		{"before 1970", []int{-20_000, -19_999}, "[{Coat 1} {Dress 1}]", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tl := newTally(window)
			for _, s := range tc.seconds {
				label := "Coat"
				if s%2 == 0 {
					label = "Dress"
				}
				tl.add(base.Add(time.Duration(s)*time.Second), []string{label})
			}
			sum := tl.summary("door")
			if got := fmt.Sprint(sum.Counts); got != tc.want || sum.Frames != tc.frames {
				t.Fatalf("got %d frames %s, want %d frames %s", sum.Frames, got, tc.frames, tc.want)
			}
		})
	}
}

func TestTallyWindowBounds(t *testing.T) {
	tl := newTally(time.Hour)
	base := time.Unix(1_700_000_000, 0)
	for i := range 10 {
		tl.add(base.Add(time.Duration(i)*time.Second), []string{"Bag", "Bag"})
	}
	s := tl.summary("till")
	if !s.WindowStart.Equal(base) || !s.WindowEnd.Equal(base.Add(9*time.Second)) || s.CameraID != "till" {
		t.Fatalf("got window %v..%v for %q, want %v..%v for till", s.WindowStart, s.WindowEnd, s.CameraID, base, base.Add(9*time.Second))
	}
	if len(s.Counts) != 1 || s.Counts[0] != (Count{"Bag", 20}) || s.Frames != 10 {
		t.Fatalf("got %v over %d frames, want 20 Bags over 10", s.Counts, s.Frames)
	}
}

func TestOptionsValidate(t *testing.T) {
	dress := []string{"Dress"}
	cases := []struct {
		name string
		opts Options
		want string // "" for valid
	}{
		{"zero values", Options{}, ""},
		{"full", Options{Policy: PolicyLatest, QueueSize: 64, TallyWindow: time.Minute, Summaries: true, SummaryInterval: time.Second,
			Rules: []Rule{{Name: "a", Categories: dress, MinScore: 1, MinConsecutive: 5, Cooldown: time.Minute}}}, ""},
		{"unknown policy", Options{Policy: 7}, "policy"},
		{"queue too big", Options{QueueSize: 65}, "queue_size 65"},
		{"window too long", Options{TallyWindow: 25 * time.Hour}, "tally_window"},
		{"summaries too often", Options{Summaries: true, SummaryInterval: time.Millisecond}, "summary_interval"},
		{"no categories", Options{Rules: []Rule{{Name: "a"}}}, "categories"},
		{"empty category", Options{Rules: []Rule{{Categories: []string{""}}}}, "empty category"},
		{"score above 1", Options{Rules: []Rule{{Categories: dress, MinScore: 1.5}}}, "min_score"},
		{"negative cooldown", Options{Rules: []Rule{{Categories: dress, Cooldown: -time.Second}}}, "cooldown"},
		{"same name twice", Options{Rules: []Rule{{Name: "a", Categories: dress}, {Name: "a", Categories: dress}}}, "twice"},
		{"too many rules", Options{Rules: make([]Rule, MaxRules+1)}, "alert rules"},
		{"score NaN", Options{Rules: []Rule{{Categories: dress, MinScore: float32(math.NaN())}}}, "min_score NaN is outside [0, 1]"},
		{"negative score", Options{Rules: []Rule{{Categories: dress, MinScore: -0.5}}}, "min_score -0.5"},
		{"too many categories", Options{Rules: []Rule{{Categories: make([]string, MaxCategories+1)}}}, "needs 1 to 64 categories, has 65"},
		// The session validates after WithDefaults: an unnamed rule may not take the
		// default name of another rule's explicit one.
		{"a default name taken", Options{Rules: []Rule{{Name: "rule-2", Categories: dress}, {Categories: dress}}}.WithDefaults(), `"rule-2" is used twice`},
		{"long camera id", Options{CameraID: strings.Repeat("c", MaxNameBytes+1)}, "camera_id of 257 bytes is over the limit of 256"},
		{"camera id at the limit", Options{CameraID: strings.Repeat("c", MaxNameBytes)}, ""},
		{"long rule name", Options{Rules: []Rule{{Name: strings.Repeat("r", 1<<20), Categories: dress}}}, "alert rule 0: name of 1048576 bytes is over the limit of 256"},
		{"long category", Options{Rules: []Rule{{Categories: []string{"Dress", strings.Repeat("d", MaxNameBytes+1)}}}}, "category 1 of 257 bytes is over the limit of 256"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.TallyWindow == 0 {
				tc.opts.TallyWindow = DefaultTallyWindow // as the handler fills an unset one
			}
			err := tc.opts.Validate()
			if tc.want == "" && err != nil {
				t.Fatalf("got %v, want valid", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// TestOptionsValidateRefusesExplicitZeros: the handler fills the defaults of unset
// fields, so the core takes no 0 for a default: a tally window or an explicit summary
// interval of 0 or less is refused, naming the field and its limit.
func TestOptionsValidateRefusesExplicitZeros(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string // "" for valid
	}{
		{"no window", Options{}, "tally_window 0s is out of range (0, 24h0m0s] (leave it unset for 1h0m0s)"},
		{"negative window", Options{TallyWindow: -time.Second}, "tally_window -1s is out of range (0, 24h0m0s]"},
		{"1 ns window", Options{TallyWindow: 1}, ""},
		{"summaries every 0", Options{TallyWindow: time.Hour, Summaries: true}, "summary_interval 0s is below 10ms"},
		{"summaries every -1 s", Options{TallyWindow: time.Hour, Summaries: true, SummaryInterval: -time.Second}, "summary_interval -1s is below 10ms"},
		{"summaries every 10 ms", Options{TallyWindow: time.Hour, Summaries: true, SummaryInterval: MinSummaryInterval}, ""},
		{"an interval with summaries off", Options{TallyWindow: time.Hour, SummaryInterval: time.Second}, "summary_interval 1s is set with summaries off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkInvalid(t, tc.opts.Validate(), tc.want)
		})
	}
}

func TestCheckCategories(t *testing.T) {
	rules := func(cats ...string) Options { return Options{Rules: []Rule{{Name: "r", Categories: cats}}} }
	many := make([]string, 40)
	for i := range many {
		many[i] = fmt.Sprintf("c%d", i)
	}
	tests := []struct {
		name   string
		opts   Options
		labels map[string][]string
		want   string // "" for no error
	}{
		{"named by the classifier", rules("Dress"), map[string][]string{"classifier:1": {"Coat", "Dress"}}, ""},
		{"named by either model", rules("bag", "Dress"), map[string][]string{"detector:1": {"bag"}, "classifier:1": {"Dress"}}, ""},
		{"a typo", rules("Dress", "Dres"), map[string][]string{"classifier:1": {"Coat", "Dress"}},
			`alert rule 0 ("r"): no model of this stream names the category "Dres" (classifier:1: Coat, Dress)`},
		{"case matters", rules("dress"), map[string][]string{"classifier:1": {"Dress"}}, `the category "dress"`},
		{"models listed in order", rules("x"), map[string][]string{"detector:1": {"bag"}, "classifier:1": {"Dress"}},
			"(classifier:1: Dress; detector:1: bag)"},
		{"a long list is cut", rules("x"), map[string][]string{"m:1": many}, "c31 and 8 more)"},
		{"a model without labels takes any category", rules("class_3"), map[string][]string{"m:1": nil}, ""},
		{"no rules", Options{}, map[string][]string{"m:1": {"a"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkInvalid(t, tc.opts.CheckCategories(tc.labels), tc.want)
		})
	}
}

// checkInvalid fails t unless err is nil (want "") or INVALID_ARGUMENT containing want.
func checkInvalid(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("got %v, want no error", err)
	case want != "" && (!errors.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), want)):
		t.Fatalf("got %v, want INVALID_ARGUMENT containing %q", err, want)
	}
}
