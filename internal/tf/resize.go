package tf

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/atelier-vision/atelier/internal/tensor"
	tfb "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
	tg "github.com/galeone/tfgo"
)

// Resizer resizes 8-bit images with TensorFlow's own bilinear kernel, so a server fed
// through it sees the pixels a Python pipeline using tf.image.resize would. For an
// image img (HWC uint8) Resize returns exactly
//
//	tf.cast(tf.round(tf.clip_by_value(
//	    tf.image.resize(img, [outH, outW], method="bilinear", antialias=False),
//	    0, 255)), tf.uint8)
//
// (tf.image.resize is ResizeBilinear with half_pixel_centers=True, align_corners=False;
// tf.round rounds half to even). One graph, with placeholders for the image and the
// size, serves every size. A Resizer is safe for concurrent use: each call runs on
// its caller's thread, single-threaded, so callers parallelise across images.
type Resizer struct {
	sess           *tfb.Session
	img, size, out tfb.Output
	closed         atomic.Bool
	once           sync.Once
	err            error
}

// NewResizer builds the resize graph and its session.
func NewResizer() (r *Resizer, err error) {
	defer recoverTo(&err, "tf: new resizer: ")
	// tfgo's image package cannot serve here: NewImage rescales pixels to [0, 1],
	// ResizeBilinear drops its attributes (so no half-pixel centres) and the size is a
	// constant. Build the graph with tfgo's scope helpers and the ops underneath.
	root := tg.NewRoot()
	img := op.Placeholder(root.SubScope("image"), tfb.Uint8, op.PlaceholderShape(tfb.MakeShape(1, -1, -1, -1)))
	size := op.Placeholder(root.SubScope("size"), tfb.Int32, op.PlaceholderShape(tfb.MakeShape(2)))
	s := root.SubScope("resize")
	x := op.ResizeBilinear(s, img, size, op.ResizeBilinearHalfPixelCenters(true), op.ResizeBilinearAlignCorners(false))
	x = op.ClipByValue(s, x, tg.Const(s, float32(0)), tg.Const(s, float32(255)))
	x = op.Round(s, x)
	out := tg.Cast(s, x, tfb.Uint8)
	graph, err := root.Finalize()
	if err != nil {
		return nil, fmt.Errorf("tf: build resize graph: %w", err)
	}
	so, err := sessionOptions(Options{IntraOpThreads: 1, InterOpThreads: -1})
	if err != nil {
		return nil, fmt.Errorf("tf: resize session: %w", err)
	}
	var sess *tfb.Session
	withoutProfSignal(func() { sess, err = tfb.NewSession(graph, so) })
	if err != nil {
		return nil, fmt.Errorf("tf: resize session: %w", err)
	}
	return &Resizer{sess: sess, img: img, size: size, out: out}, nil
}

// Resize resizes pix, an h x w image with c interleaved channels (HWC, h*w*c bytes),
// to outH x outW and returns the new outH*outW*c bytes. Bad sizes are errors wrapping
// tensor.ErrBadInput.
func (r *Resizer) Resize(pix []uint8, h, w, c, outH, outW int) ([]uint8, error) {
	out, err := r.resize(pix, h, w, c, outH, outW)
	if err != nil {
		return nil, fmt.Errorf("tf: resize %dx%dx%d to %dx%d: %w", h, w, c, outH, outW, err)
	}
	return out, nil
}

func (r *Resizer) resize(pix []uint8, h, w, c, outH, outW int) (res []uint8, err error) {
	const maxSide, maxBytes = 1 << 16, 1 << 30
	if h <= 0 || w <= 0 || c <= 0 || outH <= 0 || outW <= 0 {
		return nil, fmt.Errorf("%w: sizes must be positive", tensor.ErrBadInput)
	}
	if outH > maxSide || outW > maxSide || outH*outW*c > maxBytes {
		return nil, fmt.Errorf("%w: output larger than %d pixels a side or %d bytes", tensor.ErrBadInput, maxSide, maxBytes)
	}
	if len(pix) != h*w*c {
		return nil, fmt.Errorf("%w: got %d bytes, want %d", tensor.ErrBadInput, len(pix), h*w*c)
	}
	if r.closed.Load() {
		return nil, fmt.Errorf("resizer %w", tensor.ErrClosed)
	}
	defer recoverTo(&err, "")
	in, err := toTF(&tensor.Tensor{DType: tensor.Uint8, Shape: []int64{1, int64(h), int64(w), int64(c)}, Uint8: pix})
	if err != nil {
		return nil, err
	}
	defer freeTensor(in)
	size, err := toTF(&tensor.Tensor{DType: tensor.Int32, Shape: []int64{2}, Int32: []int32{int32(outH), int32(outW)}})
	if err != nil {
		return nil, err
	}
	defer freeTensor(size)
	var got []*tfb.Tensor
	withoutProfSignal(func() {
		got, err = r.sess.Run(map[tfb.Output]*tfb.Tensor{r.img: in, r.size: size}, []tfb.Output{r.out}, nil)
	})
	defer freeTensors(got)
	switch {
	case err != nil && r.closed.Load():
		return nil, fmt.Errorf("resizer %w", tensor.ErrClosed)
	case err != nil:
		return nil, err
	}
	t, err := fromTF(got[0])
	if err != nil {
		return nil, err
	}
	return t.Uint8, nil
}

// Close closes the session after the resizes in flight finish. It is idempotent.
func (r *Resizer) Close() error {
	r.once.Do(func() {
		r.closed.Store(true)
		if err := r.sess.Close(); err != nil {
			r.err = fmt.Errorf("tf: close resizer: %w", err)
		}
	})
	return r.err
}
