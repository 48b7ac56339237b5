package classify

import (
	"errors"
	"strings"
	"testing"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/models"
)

func TestValidate(t *testing.T) {
	img := []imageio.Source{{Encoded: []byte{1}}}
	tests := []struct {
		name string
		req  Request
		ok   bool
		msg  string // what a refusal must say
	}{
		{"one image", Request{Images: img, TopK: 1}, true, ""},
		{"k unset", Request{Images: img}, false, "top_k 0 is out of range"},
		{"k at limit", Request{Images: img, TopK: MaxTopK}, true, ""},
		{"no images", Request{}, false, "no images (send 1 to 64)"},
		{"too many images", Request{Images: make([]imageio.Source, MaxImages+1), TopK: 1}, false, "65 images is over the limit of 64"},
		{"negative k", Request{Images: img, TopK: -1}, false, "top_k -1"},
		{"absurd k", Request{Images: img, TopK: MaxTopK + 1}, false, "top_k 1001 is out of range 1..1000"},
		{"negative version", Request{Images: img, TopK: 1, Model: models.Spec{Version: -1}}, false, "model.version -1 is negative"},
		{"version and label", Request{Images: img, TopK: 1, Model: models.Spec{Version: 2, Label: "stable"}}, false, "model.version or model.version_label"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.req)
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, errkind.Invalid)) {
				t.Fatalf("got %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %q, want it to say %q", err, tc.msg)
			}
		})
	}
}

func TestTopK(t *testing.T) {
	probs := []float32{0.1, 0.5, 0.1, 0.3}
	got := TopK(probs, 3, &models.Model{Labels: []string{"a", "b", "c"}})
	want := []Prediction{{"b", 1, 0.5}, {"class_3", 3, 0.3}, {"a", 0, 0.1}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v (ties keep class order; missing labels are class_N)", got, want)
		}
	}
	if got := TopK(probs, 100, &models.Model{}); len(got) != 4 {
		t.Fatalf("got %d predictions for k=100 over 4 classes, want 4", len(got))
	}
}
