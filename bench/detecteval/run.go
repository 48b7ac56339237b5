package detecteval

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/atelier-vision/atelier/internal/parallel"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// Options sets how Run calls the server.
type Options struct {
	// MinScore is the score a detection needs to count for recall and fine accuracy;
	// mAP uses every detection the server returns.
	MinScore float64
	// Concurrency is how many requests are in flight at once (at least 1).
	Concurrency int
	// Timeout bounds each request.
	Timeout time.Duration
	// Tiling is sent with every request; unset means the server's auto.
	Tiling pb.Tiling
}

// DefaultOptions scores at the server's default min score, two requests at a time.
var DefaultOptions = Options{MinScore: 0.5, Concurrency: 2, Timeout: time.Minute}

// Run sends every scene of t to the server's default detector and classifier (as PNG,
// asking for all detections: min_score 0, max_detections 100, top_k 1), and scores the
// answers. It returns the detections too, scene by scene.
func Run(ctx context.Context, client pb.DetectServiceClient, t *Truth, opt Options) (Report, [][]Found, error) {
	found := make([][]Found, len(t.Scenes))
	err := parallel.For(ctx, len(t.Scenes), opt.Concurrency, func(i int) (err error) {
		found[i], err = detect(ctx, client, t, i, opt)
		return err
	})
	if err != nil {
		return Report{}, nil, err
	}
	return Score(t.Scenes, found, opt.MinScore), found, nil
}

// detect sends scene i and converts the answer.
func detect(ctx context.Context, client pb.DetectServiceClient, t *Truth, i int, opt Options) ([]Found, error) {
	s := t.Scenes[i]
	data, err := os.ReadFile(filepath.Join(t.Dir, s.File))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	resp, err := client.Detect(ctx, &pb.DetectRequest{
		Image:         &pb.Image{Data: &pb.Image_Encoded{Encoded: data}},
		MinScore:      proto.Float32(0),
		MaxDetections: proto.Int32(100),
		TopK:          proto.Int32(1),
		Tiling:        opt.Tiling,
	})
	if err != nil {
		return nil, fmt.Errorf("detecteval: Detect %s: %w", s.File, err)
	}
	if int(resp.ImageWidth) != s.Width || int(resp.ImageHeight) != s.Height {
		return nil, fmt.Errorf("detecteval: %s is %dx%d but the server saw %dx%d",
			s.File, s.Width, s.Height, resp.ImageWidth, resp.ImageHeight)
	}
	out := make([]Found, len(resp.Detections))
	for j, d := range resp.Detections {
		b := d.GetBox()
		out[j] = Found{
			Box:   Box{float64(b.GetXMin()), float64(b.GetYMin()), float64(b.GetXMax()), float64(b.GetYMax())},
			Type:  d.GarmentType,
			Score: float64(d.Score),
		}
		if p := d.GetClassification().GetPredictions(); len(p) > 0 {
			out[j].Label = p[0].Label
		}
	}
	return out, nil
}
