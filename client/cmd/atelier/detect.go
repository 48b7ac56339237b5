package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// box is a bounding box in JSON output, in the image's pixels.
type box struct {
	XMin float32 `json:"x_min"`
	YMin float32 `json:"y_min"`
	XMax float32 `json:"x_max"`
	YMax float32 `json:"y_max"`
}

// detection is one garment in JSON output.
type detection struct {
	Box         box          `json:"box"`
	GarmentType string       `json:"garment_type"`
	Score       float32      `json:"score"`
	Predictions []prediction `json:"predictions,omitempty"`
}

// detectResult is one input's answer, in JSON output.
type detectResult struct {
	File        string      `json:"file"`
	Detector    *modelRef   `json:"detector,omitempty"`
	Classifier  *modelRef   `json:"classifier,omitempty"`
	ImageWidth  uint32      `json:"image_width,omitempty"`
	ImageHeight uint32      `json:"image_height,omitempty"`
	Detections  []detection `json:"detections"`
	Error       *inputError `json:"error,omitempty"`

	resp *pb.DetectResponse
	raw  []byte
}

func detectCmd(fs *flag.FlagSet) func(context.Context, *app, []string) error {
	minScore := fs.Float64("min-score", -1, "drop detections scoring below this, 0..1 (default: the server's, 0.5)")
	maxDet := fs.Int("max-detections", 0, "most detections per image, 1..100 (default: the server's, 20)")
	topK := fs.Int("top-k", 1, "fine categories per garment, 1..1000")
	skip := fs.Bool("skip-classification", false, "do not classify the detected garments")
	tiling := fs.String("tiling", "auto", "also search overlapping tiles of large pictures: auto (pictures over 2.5x the detector's input), on or off")
	model := fs.String("model", "", "detector to use (default: the server's default detector)")
	classifier := fs.String("classifier", "", "classifier for the crops (default: the server's default classifier)")
	draw := fs.String("draw", "", "write the image with its boxes and labels to this PNG (one input only)")
	conc := fs.Int("concurrency", 2, "requests in flight at once")
	return func(ctx context.Context, a *app, args []string) error {
		if *minScore > 1 || *maxDet < 0 || *maxDet > 100 || *topK < 1 || *topK > 1000 || *conc < 1 {
			return usagef("--min-score must be 0..1, --max-detections 1..100, --top-k 1..1000, --concurrency at least 1")
		}
		tilingMode, ok := pb.Tiling_value["TILING_"+strings.ToUpper(*tiling)]
		if !ok || *tiling == "unspecified" {
			return usagef("--tiling must be auto, on or off, not %q", *tiling)
		}
		files, err := expandInputs(args)
		if err != nil {
			return err
		}
		if *draw != "" && len(files) != 1 {
			return usagef("--draw takes one input image, not %d", len(files))
		}
		c, err := a.connect()
		if err != nil {
			return err
		}
		req := &pb.DetectRequest{Model: &pb.ModelSpec{Name: *model}, SkipClassification: *skip,
			Classifier: &pb.ModelSpec{Name: *classifier}, Tiling: pb.Tiling(tilingMode)}
		if *minScore >= 0 {
			v := float32(*minScore)
			req.MinScore = &v
		}
		if *maxDet > 0 {
			v := int32(*maxDet)
			req.MaxDetections = &v
		}
		k := int32(*topK)
		req.TopK = &k

		results := make([]detectResult, len(files))
		o := newOut(a.output, a.env.stdout, []string{"FILE", "#", "GARMENT", "SCORE", "BOX", "LABEL"},
			[]string{"file", "index", "garment_type", "score", "x_min", "y_min", "x_max", "y_max", "label", "label_score", "error_code", "error_message"})
		o.fit(0, files)
		bar := newProgress(a, len(files), "images")
		done := newOutcome(a, bar, len(files))
		forEachInOrder(len(files), *conc, func(i int) {
			r := &results[i]
			r.File = files[i]
			if r.Error = done.halted(ctx); r.Error != nil {
				return
			}
			b, err := readInput(files[i], a.env.stdin)
			if err != nil {
				r.Error = errorOf(err)
				return
			}
			one := proto.Clone(req).(*pb.DetectRequest)
			one.Image = &pb.Image{Data: &pb.Image_Encoded{Encoded: b}}
			resp, err := c.Detect(ctx, one)
			if err != nil {
				r.Error = errorOf(err)
				done.saw(r.Error)
				return
			}
			r.fill(resp)
			r.raw = b
		}, func(i int) {
			r := results[i]
			bar.clear()
			done.emit(r.File, r.Error)
			rows, csvRows := detectRows(r)
			o.record(r, rows, csvRows)
			bar.add(1)
		})
		if err := o.close(); err != nil {
			return err
		}
		if *draw != "" && results[0].Error == nil {
			if err := drawDetections(results[0].raw, results[0].resp, *draw); err != nil {
				return fmt.Errorf("--draw %s: %w", *draw, err)
			}
		}
		return done.end()
	}
}

func (r *detectResult) fill(resp *pb.DetectResponse) {
	r.resp = resp
	r.Detector, r.Classifier = refOf(resp.Detector), refOf(resp.Classifier)
	r.ImageWidth, r.ImageHeight = resp.ImageWidth, resp.ImageHeight
	r.Detections = []detection{}
	for _, d := range resp.Detections {
		b := d.GetBox()
		r.Detections = append(r.Detections, detection{
			Box:         box{b.GetXMin(), b.GetYMin(), b.GetXMax(), b.GetYMax()},
			GarmentType: d.GarmentType, Score: d.Score, Predictions: predictionsOf(d.Classification),
		})
	}
}

// detectRows is one table row and one CSV row per detection (a table row for none or
// an error; a CSV row for an error).
func detectRows(r detectResult) (rows, csvRows [][]string) {
	if r.Error != nil {
		return [][]string{{r.File, "-", "-", "-", "-", "error " + r.Error.String()}},
			[][]string{{r.File, "", "", "", "", "", "", "", "", "", r.Error.Code, r.Error.Message}}
	}
	if len(r.Detections) == 0 {
		return [][]string{{r.File, "0", "-", "-", "-", "no garment found"}}, nil
	}
	for i, d := range r.Detections {
		label, score := "", ""
		if len(d.Predictions) > 0 {
			label, score = d.Predictions[0].Label, f32(d.Predictions[0].Score)
		}
		b := d.Box
		rows = append(rows, []string{r.File, strconv.Itoa(i + 1), d.GarmentType, fmt.Sprintf("%.3f", d.Score),
			fmt.Sprintf("%.1f,%.1f,%.1f,%.1f", b.XMin, b.YMin, b.XMax, b.YMax), label})
		csvRows = append(csvRows, []string{r.File, strconv.Itoa(i + 1), d.GarmentType, f32(d.Score),
			f32(b.XMin), f32(b.YMin), f32(b.XMax), f32(b.YMax), label, score, "", ""})
	}
	return rows, csvRows
}
