package livestream

import (
	"strings"
	"testing"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// TestLinesAreSafeForTerminals: a label from the server reaches the progress and alert
// lines escaped, so it can neither start a line of its own nor drive the terminal.
func TestLinesAreSafeForTerminals(t *testing.T) {
	label := "Dress\x1b]0;PWNED\a\nALERT forged"
	lines := []string{
		AlertLine(&pb.Alert{CameraId: "door", Rule: "r", Label: label}),
		Report{Summary: &pb.TallySummary{Counts: []*pb.CategoryCount{{Label: label, Count: 2}}}}.String(),
	}
	for _, l := range lines {
		if strings.ContainsAny(l, "\x1b\a\n") || !strings.Contains(l, `Dress\x1b]0;PWNED\a\nALERT forged`) {
			t.Errorf("line %q carries the label unescaped", l)
		}
	}
}
