package detecteval

import (
	"math"
	"testing"
)

func TestIoU(t *testing.T) {
	tests := []struct {
		name string
		a, b Box
		want float64
	}{
		{"same", Box{0, 0, 10, 10}, Box{0, 0, 10, 10}, 1},
		{"half", Box{0, 0, 10, 10}, Box{5, 0, 15, 10}, 50.0 / 150},
		{"apart", Box{0, 0, 10, 10}, Box{20, 20, 30, 30}, 0},
		{"touching", Box{0, 0, 10, 10}, Box{10, 0, 20, 10}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IoU(tc.a, tc.b); math.Abs(got-tc.want) > 1e-12 {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestScore uses the cases of savedmodels/tests/test_detector.py::test_score_rules, so
// the Go and Python evaluations agree.
func TestScore(t *testing.T) {
	scene := Scene{Objects: []Object{
		{Box: Box{0, 0, 10, 10}, Type: "top", Label: "Shirt"},
		{Box: Box{20, 20, 30, 30}, Type: "top", Label: "Coat"},
		{Box: Box{50, 50, 60, 60}, Type: "top", Label: "Coat", Difficult: true},
	}}
	tests := []struct {
		name              string
		found             []Found
		ap, recall, fine  float64
		matched, garments int
	}{
		{"nothing found", nil, 0, 0, 0, 0, 2},
		{"one of two", []Found{{Box{0, 0, 10, 10}, "top", 0.9, "Shirt"}}, 0.5, 0.5, 1, 1, 2},
		{"duplicate and a weak hit", []Found{
			{Box{0, 0, 10, 10}, "top", 0.9, "Shirt"},
			{Box{0, 0, 10, 10}, "top", 0.8, "Shirt"},
			{Box{20, 20, 30, 31}, "top", 0.4, "Coat"},
		}, 5.0 / 6, 0.5, 1, 1, 2},
		{"difficult one is ignored", []Found{{Box{50, 50, 60, 60}, "top", 0.9, "Coat"}}, 0, 0, 0, 0, 2},
		{"wrong type is a miss", []Found{{Box{0, 0, 10, 10}, "bag", 0.9, "Shirt"}}, 0, 0, 0, 0, 2},
		{"wrong fine label", []Found{{Box{0, 0, 10, 10}, "top", 0.9, "Pullover"},
			{Box{20, 20, 30, 30}, "top", 0.8, "Coat"}}, 1, 1, 0.5, 2, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Score([]Scene{scene}, [][]Found{tc.found}, 0.5)
			if math.Abs(r.MAP-tc.ap) > 1e-12 || math.Abs(r.Recall-tc.recall) > 1e-12 || math.Abs(r.FineAccuracy-tc.fine) > 1e-12 ||
				r.Matched != tc.matched || r.Garments != tc.garments {
				t.Fatalf("got mAP %v recall %v fine %v matched %d of %d, want %v %v %v %d of %d",
					r.MAP, r.Recall, r.FineAccuracy, r.Matched, r.Garments, tc.ap, tc.recall, tc.fine, tc.matched, tc.garments)
			}
		})
	}
}
