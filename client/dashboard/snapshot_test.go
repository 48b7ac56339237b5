package dashboard

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/client/palette"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// putFrame puts a frame captured at captured into c's ring, as its source would.
func putFrame(c *camera, id uint64, captured time.Time) *frame {
	f := &frame{id: id, captured: captured, image: &pb.Image{}, w: 64, h: 48}
	c.mu.Lock()
	c.ring[id%ringSize], c.latest = f, f
	c.mu.Unlock()
	return f
}

// answer is atelierd's answer to frame id: one detection per label, of garment type typ.
func answer(id uint64, typ string, labels ...string) *pb.DetectStreamResponse {
	r := &pb.DetectFrameResult{FrameId: id}
	for _, l := range labels {
		r.Detections = append(r.Detections, &pb.Detection{Box: &pb.BoundingBox{XMax: 10, YMax: 10}, GarmentType: typ, Score: 0.9,
			Classification: &pb.Classification{Predictions: []*pb.Prediction{{Label: l, Score: 0.9}}}})
	}
	return &pb.DetectStreamResponse{Message: &pb.DetectStreamResponse_Result{Result: r}}
}

// TestGarmentTypesAreFixed: a Pullover whose first box the detector called full-body
// still counts as a top in the garment-type shares and gets a shade of the top colour,
// as the training code groups it, not the type of whichever box came first.
func TestGarmentTypesAreFixed(t *testing.T) {
	d := quietDashboard(t)
	c := d.cameras[0]
	now := time.Now()
	putFrame(c, 1, now)
	c.take(answer(1, "full-body", "Pullover")) // first seen in a box called full-body
	putFrame(c, 2, now)
	c.take(answer(2, "top", "Pullover", "Dress"))
	putFrame(c, 3, now)
	c.take(answer(3, "top", "Zebra")) // not a category of the embedded models: its boxes' type
	c.take(&pb.DetectStreamResponse{Message: &pb.DetectStreamResponse_Summary{Summary: &pb.TallySummary{Frames: 3,
		Counts: []*pb.CategoryCount{{Label: "Pullover", Count: 5}, {Label: "Dress", Count: 2}, {Label: "Zebra", Count: 1}}}}})

	s := d.snapshot(now, false)
	types := map[string]uint64{}
	for _, sh := range s.Types {
		types[sh.Name] = sh.Count
	}
	if want := map[string]uint64{"top": 6, "full-body": 2}; !equalCounts(types, want) {
		t.Errorf("garment-type counts %v, want %v (a Pullover is a top)", types, want)
	}
	if got, want := s.Colors["Pullover"], palette.Hex(palette.Categories(map[string]string{"Pullover": "top", "Zebra": "top"})["Pullover"]); got != want {
		t.Errorf("Pullover's colour %s, want %s (a shade of top's)", got, want)
	}
	if got, want := s.Colors["Dress"], palette.Hex(palette.ByType["full-body"]); got != want {
		t.Errorf("Dress's colour %s, want %s", got, want)
	}
	if got := s.Order; len(got) != 3 || got[0] != "Pullover" || got[1] != "Zebra" || got[2] != "Dress" {
		t.Errorf("category order %v, want [Pullover Zebra Dress] (tops, then full-body)", got)
	}
}

func equalCounts(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestTileShowsTheAgeOfItsFrame: once answers stop, the lag of the last answer stays
// as it was, but the age of the frame the tile shows keeps growing.
func TestTileShowsTheAgeOfItsFrame(t *testing.T) {
	d := quietDashboard(t)
	c := d.cameras[0]
	captured := time.Now().Add(-200 * time.Millisecond)
	putFrame(c, 1, captured)
	c.take(answer(1, "top", "Shirt"))
	later := captured.Add(5 * time.Second) // answers stopped 5 s ago
	st, _ := c.status(later)
	b, _ := json.Marshal(st)
	var m map[string]any
	json.Unmarshal(b, &m)
	if age, _ := m["age_ms"].(float64); age != 5000 {
		t.Errorf("status %s: age_ms %v, want 5000 (now minus the shown frame's capture)", b, m["age_ms"])
	}
	if lag := st.LagMS; lag < 200 || lag > 1000 {
		t.Errorf("lag %d ms, want the capture-to-answer time of about 200 ms", lag)
	}
}
