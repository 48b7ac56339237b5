package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/prep"
	"github.com/atelier-vision/atelier/internal/tensor"
	"github.com/atelier-vision/atelier/internal/tf"
)

// Raw is the in-process reference: the median time of decode+resize, of one session
// run of batch 1, and of both.
type Raw struct {
	Label    string  `json:"label"`
	Runs     int     `json:"runs"`
	DecodeMS float64 `json:"decode_ms"`
	RunMS    float64 `json:"run_ms"`
	TotalMS  float64 `json:"total_ms"`
}

// rawModel is a SavedModel opened in-process with the server's own image preparation.
type rawModel struct {
	model   *tf.Model
	resizer *tf.Resizer
	prep    *prep.Preparer
	h, w, c int // the `images` input's size
}

// openRaw loads the SavedModel in dir in fp32 and a resizer for its images.
func openRaw(dir string) (*rawModel, error) {
	m, err := tf.Load(dir, tf.Options{})
	if err != nil {
		return nil, err
	}
	resizer, err := tf.NewResizer()
	if err != nil {
		m.Close()
		return nil, err
	}
	sig, _ := m.Signature("serving_default")
	shape := sig.Inputs[0].Shape
	return &rawModel{model: m, resizer: resizer, prep: &prep.Preparer{Limits: imageio.DefaultLimits, Resizer: resizer},
		h: int(shape[1]), w: int(shape[2]), c: int(shape[3])}, nil
}

func (r *rawModel) close() {
	r.resizer.Close()
	r.model.Close()
}

// raw times the path of one request without gRPC or batching.
func raw(dir string, images [][]byte, runs int) error {
	r, err := openRaw(dir)
	if err != nil {
		return err
	}
	defer r.close()
	m, p, h, w, c := r.model, r.prep, r.h, r.w, r.c
	var decode, run, total []float64
	for i := -3; i < runs; i++ { // three warm-up runs
		pix := make([]uint8, h*w*c)
		t0 := time.Now()
		if err := p.Load(imageio.Source{Encoded: images[(i+3)%len(images)]}, h, w, c, pix); err != nil {
			return err
		}
		t1 := time.Now()
		in, _ := tensor.NewUint8([]int64{1, int64(h), int64(w), int64(c)}, pix)
		if _, err := m.Run(context.Background(), "serving_default", map[string]*tensor.Tensor{"images": in}, []string{"probabilities"}); err != nil {
			return err
		}
		t2 := time.Now()
		if i >= 0 {
			decode = append(decode, ms(t1.Sub(t0)))
			run = append(run, ms(t2.Sub(t1)))
			total = append(total, ms(t2.Sub(t0)))
		}
	}
	out, _ := json.Marshal(Raw{Label: "raw", Runs: runs, DecodeMS: median(decode), RunMS: median(run), TotalMS: median(total)})
	fmt.Println(string(out))
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(v []float64) float64 {
	sort.Float64s(v)
	return v[len(v)/2]
}
