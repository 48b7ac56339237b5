package dashboard

import (
	"context"
	"fmt"
	"slices"
	"strings"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// A rule's categories must be labels of the models a stream runs (its detector's
// garment types and its classifier's fine categories): atelierd refuses the whole
// stream otherwise (INVALID_ARGUMENT), so that a typo does not make a rule that never
// fires. The dashboard checks its rules against the labels of the models atelierd
// lists, leaves a rule with an unknown category out of the streams and says so in
// the banner and the log, so that the cameras run; a stream atelierd refuses anyway
// is not retried until its models change (camRefused).

// ruleLabels returns every label of the detectors' and classifiers' versions, in model
// order, or nil when one has none (atelierd then takes any category, and so does the
// dashboard).
func ruleLabels(ms []*pb.ModelInfo) []string {
	var out []string
	for _, m := range ms {
		if m.Role != pb.ModelRole_MODEL_ROLE_DETECTOR && m.Role != pb.ModelRole_MODEL_ROLE_CLASSIFIER {
			continue
		}
		for _, v := range m.Versions {
			if len(v.Labels) == 0 {
				return nil
			}
			for _, l := range v.Labels {
				if !slices.Contains(out, l) {
					out = append(out, l)
				}
			}
		}
	}
	return out
}

// unknownCategory returns the first of cats that known lacks, "" if none or if the
// labels are not known (nil).
func unknownCategory(cats, known []string) string {
	if known == nil {
		return ""
	}
	for _, c := range cats {
		if !slices.Contains(known, c) {
			return c
		}
	}
	return ""
}

// modelLabels returns the labels rules may name (nil: unknown, any passes), whether
// the models have been listed at all, and a channel closed when they are listed next.
func (d *Dashboard) modelLabels() (labels []string, listed bool, next <-chan struct{}) {
	d.conn.mu.Lock()
	defer d.conn.mu.Unlock()
	return d.conn.labels, d.conn.listed, d.conn.relisted
}

// streamRules returns the rules a camera's stream can carry: those whose categories
// atelierd's models know.
func (d *Dashboard) streamRules(rules []*pb.AlertRule) []*pb.AlertRule {
	known, _, _ := d.modelLabels()
	return slices.DeleteFunc(slices.Clone(rules), func(r *pb.AlertRule) bool { return unknownCategory(r.Categories, known) != "" })
}

// ruleProblems says, for each configured rule left out of the streams, why.
func (d *Dashboard) ruleProblems() []string {
	known, _, _ := d.modelLabels()
	var out []string
	for _, r := range d.cfg.Rules {
		cat := unknownCategory(r.Categories, known)
		if cat == "" {
			continue
		}
		where := "every camera"
		if r.Camera != "" {
			where = "camera " + r.Camera
		}
		hint := ""
		for _, l := range known {
			if strings.EqualFold(l, cat) {
				hint = fmt.Sprintf(" (did you mean %q?)", l)
			}
		}
		out = append(out, fmt.Sprintf("Alert rule %q (%s) is off: no model on atelierd knows the category %q%s. Known labels: %s.",
			r.Name, where, cat, hint, listLabels(known, 40)))
	}
	return out
}

// listLabels joins up to n labels, saying how many more there are.
func listLabels(labels []string, n int) string {
	if len(labels) <= n {
		return strings.Join(labels, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(labels[:n], ", "), len(labels)-n)
}

// waitModels waits until next is closed (the models were listed again) or ctx ends.
func waitModels(ctx context.Context, next <-chan struct{}) {
	select {
	case <-next:
	case <-ctx.Done():
	}
}
