package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atelier-vision/atelier/client"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// classifyResult is one input's answer, in JSON output.
type classifyResult struct {
	File        string       `json:"file"`
	Model       *modelRef    `json:"model,omitempty"`
	Predictions []prediction `json:"predictions,omitempty"`
	Error       *inputError  `json:"error,omitempty"`
}

func classifyCmd(fs *flag.FlagSet) func(context.Context, *app, []string) error {
	topK := fs.Int("top-k", 1, "categories per image, 1..1000")
	model := fs.String("model", "", "classifier to use (default: the server's default classifier)")
	version := fs.Int64("version", 0, "model version (0: the newest)")
	batch := fs.Int("batch", 16, "images per request, 1..64")
	conc := fs.Int("concurrency", 2, "requests in flight at once")
	return func(ctx context.Context, a *app, args []string) error {
		if *topK < 1 || *topK > 1000 || *batch < 1 || *batch > 64 || *conc < 1 {
			return usagef("--top-k must be 1..1000, --batch 1..64 and --concurrency at least 1")
		}
		files, err := expandInputs(args)
		if err != nil {
			return err
		}
		c, err := a.connect()
		if err != nil {
			return err
		}
		k := int32(*topK)
		spec := &pb.ModelSpec{Name: *model, Version: *version}
		results := make([]classifyResult, len(files))
		for i, f := range files {
			results[i].File = f
		}
		o := newOut(a.output, a.env.stdout, []string{"FILE", "LABEL", "SCORE", "MORE"},
			[]string{"file", "rank", "label", "class_index", "score", "model", "version", "error_code", "error_message"})
		o.fit(0, files)
		bar := newProgress(a, len(files), "files")
		done := newOutcome(a, bar, len(files))
		batches := (len(files) + *batch - 1) / *batch
		forEachInOrder(batches, *conc, func(b int) {
			lo, hi := b**batch, min((b+1)**batch, len(files))
			if e := done.halted(ctx); e != nil {
				for i := range results[lo:hi] {
					results[lo+i].Error = e
				}
				return
			}
			classifyBatch(ctx, a, c, spec, k, results[lo:hi])
			for _, r := range results[lo:hi] {
				done.saw(r.Error)
			}
		}, func(b int) {
			lo, hi := b**batch, min((b+1)**batch, len(files))
			bar.clear()
			for _, r := range results[lo:hi] {
				done.emit(r.File, r.Error)
				o.record(r, [][]string{classifyRow(r)}, classifyCSV(r))
			}
			bar.add(hi - lo)
		})
		if err := o.close(); err != nil {
			return err
		}
		return done.end()
	}
}

// maxRequestBytes bounds the image bytes of one request: the server's default
// request limit (the client's too), less room for the rest of the message.
const maxRequestBytes = client.DefaultMaxMessageBytes - 1<<20

// classifyBatch classifies one batch of inputs, in one request unless their bytes
// together would go over maxRequestBytes (then in as many as it takes).
func classifyBatch(ctx context.Context, a *app, c *client.Client, spec *pb.ModelSpec, topK int32, rs []classifyResult) {
	var imgs []*pb.Image
	var which []int
	size := 0
	for i := range rs {
		img, err := loadImage(rs[i].File, a.env.stdin)
		if err != nil {
			rs[i].Error = errorOf(err)
			continue
		}
		n := len(img.GetEncoded()) + 16 // the bytes and their framing
		if len(imgs) > 0 && size+n > maxRequestBytes {
			classifyImages(ctx, c, spec, topK, imgs, which, rs)
			imgs, which, size = nil, nil, 0
		}
		imgs, which, size = append(imgs, img), append(which, i), size+n
	}
	if len(imgs) > 0 {
		classifyImages(ctx, c, spec, topK, imgs, which, rs)
	}
}

// classifyImages classifies imgs, the inputs rs[which], in one request. The server
// refuses a whole request for one bad image, so on INVALID_ARGUMENT each image is
// sent again on its own to tell the bad from the good.
func classifyImages(ctx context.Context, c *client.Client, spec *pb.ModelSpec, topK int32, imgs []*pb.Image, which []int, rs []classifyResult) {
	resp, err := c.Classify(ctx, &pb.ClassifyRequest{Model: spec, Images: imgs, TopK: &topK})
	if status.Code(err) == codes.InvalidArgument && len(imgs) > 1 {
		for j, i := range which {
			resp, err := c.Classify(ctx, &pb.ClassifyRequest{Model: spec, Images: imgs[j : j+1], TopK: &topK})
			fill(&rs[i], resp, 0, err)
		}
		return
	}
	for j, i := range which {
		fill(&rs[i], resp, j, err)
	}
}

func fill(r *classifyResult, resp *pb.ClassifyResponse, j int, err error) {
	if err != nil {
		r.Error = errorOf(err)
		return
	}
	if j >= len(resp.Classifications) {
		r.Error = &inputError{Code: "INTERNAL", Message: fmt.Sprintf("the server answered %d classifications, fewer than the images sent", len(resp.Classifications))}
		return
	}
	r.Model = refOf(resp.Model)
	r.Predictions = predictionsOf(resp.Classifications[j])
}

func classifyRow(r classifyResult) []string {
	if r.Error != nil {
		return []string{r.File, "-", "-", "error " + r.Error.String()}
	}
	if len(r.Predictions) == 0 {
		return []string{r.File, "-", "-", ""}
	}
	var more []string
	for _, p := range r.Predictions[1:] {
		more = append(more, fmt.Sprintf("%s %.4f", p.Label, p.Score))
	}
	best := r.Predictions[0]
	return []string{r.File, best.Label, fmt.Sprintf("%.4f", best.Score), strings.Join(more, ", ")}
}

func classifyCSV(r classifyResult) [][]string {
	if r.Error != nil {
		return [][]string{{r.File, "", "", "", "", "", "", r.Error.Code, r.Error.Message}}
	}
	model, version := "", ""
	if r.Model != nil { // a server may leave the answer's model out
		model, version = r.Model.Name, strconv.FormatInt(r.Model.Version, 10)
	}
	var rows [][]string
	for i, p := range r.Predictions {
		rows = append(rows, []string{r.File, strconv.Itoa(i + 1), p.Label, strconv.Itoa(int(p.ClassIndex)), f32(p.Score),
			model, version, "", ""})
	}
	return rows
}
