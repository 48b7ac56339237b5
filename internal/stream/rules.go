package stream

import (
	"slices"
	"time"
)

// Sighting is one category a frame showed, with the model's score for it.
type Sighting struct {
	Label string
	Score float32
}

// Observation is what one processed frame showed.
type Observation struct {
	// Counted are the categories tallied for the frame: the top category of a
	// classified frame, or one entry per detected garment.
	Counted []string
	// Seen are the categories checked against the alert rules, with their scores.
	Seen []Sighting
}

// Alert says that a rule's category appeared on a camera.
type Alert struct {
	CameraID string
	Rule     string
	Label    string
	Score    float32
	FrameID  uint64
	Captured time.Time
}

// ruleState follows one rule along a stream's processed frames. An appearance is a
// run of consecutive processed frames that show one of the rule's categories with at
// least MinScore; the rule fires once per appearance, on its MinConsecutive-th frame,
// unless less than Cooldown of capture time has passed since it last fired (then it
// fires on the first frame of the same run after the cooldown; a capture time before
// the last alert's restarts the cooldown there). Skipped and failed frames neither
// extend nor break a run.
type ruleState struct {
	rule  Rule
	run   int  // frames in the current appearance
	fired bool // the current appearance has fired
	last  time.Time
	ever  bool // the rule has fired on this stream
}

// observe updates the state with one processed frame and returns the alert it fires.
func (s *ruleState) observe(camera string, id uint64, captured time.Time, obs Observation) (Alert, bool) {
	if s.ever && captured.Before(s.last) {
		// The capture time went back (the camera's clock was set back, say from a few
		// minutes ahead): count the cooldown from this frame, so the rule is quiet for
		// at most Cooldown, not also until the clock is back where it was when the rule
		// last fired (which silenced even a rule without cooldown).
		s.last = captured
	}
	best, ok := s.match(obs.Seen)
	if !ok {
		s.run, s.fired = 0, false
		return Alert{}, false
	}
	s.run++
	if s.fired || s.run < s.rule.MinConsecutive || (s.ever && captured.Sub(s.last) < s.rule.Cooldown) {
		return Alert{}, false
	}
	s.fired, s.ever, s.last = true, true, captured
	return Alert{CameraID: camera, Rule: s.rule.Name, Label: best.Label, Score: best.Score, FrameID: id, Captured: captured}, true
}

// match returns the highest-scoring sighting of a watched category at or above MinScore.
func (s *ruleState) match(seen []Sighting) (Sighting, bool) {
	var best Sighting
	found := false
	for _, g := range seen {
		if g.Score >= s.rule.MinScore && slices.Contains(s.rule.Categories, g.Label) && (!found || g.Score > best.Score) {
			best, found = g, true
		}
	}
	return best, found
}
