// Package detecteval scores a detector served by Atelier on held-out scenes with known
// boxes (written by `python -m atelier_train.scenes --heldout N --out DIR`): mAP@0.5,
// recall, and the fine-category accuracy of the garments it found. It composes
// nothing itself; it reads the scenes, sends them through the Detect RPC and compares.
//
// The rules are PASCAL VOC's, the same as savedmodels/atelier_train/detector_eval.py:
// a detection matches the same-type garment it overlaps most if their IoU is at least
// 0.5 and that garment is not matched yet, else it is a false positive; a detection
// whose best garment is difficult (mostly hidden or cut off) is ignored; AP is the
// area under the all-point interpolated precision/recall curve, mAP its mean over the
// types present. Recall and fine accuracy count detections scoring at least MinScore.
package detecteval

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// IoUThreshold is the overlap a detection needs to match a garment.
const IoUThreshold = 0.5

// Box is (x_min, y_min, x_max, y_max) in pixels.
type Box [4]float64

// Object is one garment of a scene's ground truth.
type Object struct {
	Box       Box    `json:"box"`
	Type      string `json:"type"`
	Label     string `json:"label"`
	Difficult bool   `json:"difficult"`
}

// Scene is one held-out picture and its garments.
type Scene struct {
	File    string   `json:"file"`
	Width   int      `json:"width"`
	Height  int      `json:"height"`
	Objects []Object `json:"objects"`
}

// Truth is a folder of held-out scenes: ground_truth.json beside the PNGs.
type Truth struct {
	Dir    string   `json:"-"`
	Seed   int      `json:"seed"`
	Types  []string `json:"types"`
	Scenes []Scene  `json:"scenes"`
}

// Load reads dir/ground_truth.json.
func Load(dir string) (*Truth, error) {
	data, err := os.ReadFile(filepath.Join(dir, "ground_truth.json"))
	if err != nil {
		return nil, fmt.Errorf("detecteval: %w (write scenes with `python -m atelier_train.scenes --heldout N --out DIR`)", err)
	}
	var t Truth
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("detecteval: %s: %w", filepath.Join(dir, "ground_truth.json"), err)
	}
	t.Dir = dir
	return &t, nil
}

// Found is one detection the server returned.
type Found struct {
	Box   Box
	Type  string
	Score float64
	// Label is the classifier's top fine category for the crop ("" if not classified).
	Label string
}

// Report is an evaluation's outcome.
type Report struct {
	Scenes   int
	Garments int // not difficult
	MinScore float64
	// MAP is mAP@0.5 over all detections; AP is per type.
	MAP float64
	AP  map[string]float64
	// Recall is the share of garments matched by a detection scoring at least MinScore.
	Recall float64
	// FineAccuracy is the share of those matched garments whose crop the classifier
	// labelled with the garment's own Fashion-MNIST category.
	FineAccuracy float64
	Matched      int
}

// String is the report in a few lines, for people.
func (r Report) String() string {
	types := make([]string, 0, len(r.AP))
	for t := range r.AP {
		types = append(types, t)
	}
	sort.Strings(types)
	s := fmt.Sprintf("%d scenes, %d garments: mAP@0.5 %.4f, recall %.4f and fine accuracy %.4f (%d matched) at min score %.2f\nAP@0.5:",
		r.Scenes, r.Garments, r.MAP, r.Recall, r.FineAccuracy, r.Matched, r.MinScore)
	for _, t := range types {
		s += fmt.Sprintf(" %s %.4f", t, r.AP[t])
	}
	return s
}

// IoU returns the intersection over union of two boxes.
func IoU(a, b Box) float64 {
	w := min(a[2], b[2]) - max(a[0], b[0])
	h := min(a[3], b[3]) - max(a[1], b[1])
	if w <= 0 || h <= 0 {
		return 0
	}
	inter := w * h
	return inter / ((a[2]-a[0])*(a[3]-a[1]) + (b[2]-b[0])*(b[3]-b[1]) - inter)
}

// Score compares found[i], the detections of scenes[i], with the ground truth.
func Score(scenes []Scene, found [][]Found, minScore float64) Report {
	r := Report{Scenes: len(scenes), MinScore: minScore, AP: map[string]float64{}}
	var aps []float64
	correct := 0
	for _, typ := range types(scenes) {
		type det struct {
			Found
			scene int
		}
		var dets []det
		for i, fs := range found {
			for _, f := range fs {
				if f.Type == typ {
					dets = append(dets, det{f, i})
				}
			}
		}
		sort.SliceStable(dets, func(a, b int) bool { return dets[a].Score > dets[b].Score })
		positives := 0
		used := make([][]bool, len(scenes))
		for i, s := range scenes {
			used[i] = make([]bool, len(s.Objects))
			for _, o := range s.Objects {
				if o.Type == typ && !o.Difficult {
					positives++
				}
			}
		}
		var tp, fp []int
		for _, d := range dets {
			best, bestIoU := -1, 0.0
			for j, o := range scenes[d.scene].Objects {
				if o.Type == typ {
					if v := IoU(d.Box, o.Box); v > bestIoU {
						best, bestIoU = j, v
					}
				}
			}
			switch {
			case best < 0 || bestIoU < IoUThreshold:
				tp, fp = append(tp, 0), append(fp, 1)
			case scenes[d.scene].Objects[best].Difficult:
			case used[d.scene][best]:
				tp, fp = append(tp, 0), append(fp, 1)
			default:
				used[d.scene][best] = true
				tp, fp = append(tp, 1), append(fp, 0)
				if d.Score >= minScore {
					r.Matched++
					if d.Label == scenes[d.scene].Objects[best].Label {
						correct++
					}
				}
			}
		}
		r.Garments += positives
		if positives > 0 {
			ap := averagePrecision(tp, fp, positives)
			r.AP[typ] = ap
			aps = append(aps, ap)
		}
	}
	for _, ap := range aps {
		r.MAP += ap / float64(len(aps))
	}
	if r.Garments > 0 {
		r.Recall = float64(r.Matched) / float64(r.Garments)
	}
	if r.Matched > 0 {
		r.FineAccuracy = float64(correct) / float64(r.Matched)
	}
	return r
}

// averagePrecision is the all-point interpolated AP of detections sorted best first.
func averagePrecision(tp, fp []int, positives int) float64 {
	n := len(tp)
	recall, precision := make([]float64, n+2), make([]float64, n+2)
	ctp, cfp := 0, 0
	for i := range n {
		ctp += tp[i]
		cfp += fp[i]
		recall[i+1] = float64(ctp) / float64(positives)
		precision[i+1] = float64(ctp) / float64(ctp+cfp)
	}
	recall[n+1] = 1
	for i := n; i >= 0; i-- {
		precision[i] = max(precision[i], precision[i+1])
	}
	ap := 0.0
	for i := 0; i <= n; i++ {
		ap += (recall[i+1] - recall[i]) * precision[i+1]
	}
	return ap
}

// types lists the garment types in the ground truth, in first-seen order.
func types(scenes []Scene) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range scenes {
		for _, o := range s.Objects {
			if !seen[o.Type] {
				seen[o.Type] = true
				out = append(out, o.Type)
			}
		}
	}
	return out
}
