// Package prep turns client images into model input: decode, convert to the model's
// channel count, and resize to its input size.
package prep

import (
	"fmt"

	"github.com/atelier-vision/atelier/internal/imageio"
)

// Resizer resizes an 8-bit HWC image; tf.Resizer does it with TensorFlow's bilinear
// kernel so the server's input matches tf.image.resize in Python.
type Resizer interface {
	Resize(pix []uint8, h, w, c, outH, outW int) ([]uint8, error)
}

// Preparer decodes and fits images to a model's input.
type Preparer struct {
	Limits  imageio.Limits
	Resizer Resizer
}

// Fit converts im to c channels and resizes it to h x w, writing the pixels into dst,
// which must hold h*w*c bytes.
func (p *Preparer) Fit(im imageio.Image, h, w, c int, dst []uint8) error {
	if len(dst) != h*w*c {
		return fmt.Errorf("prep: destination holds %d bytes, want %d", len(dst), h*w*c)
	}
	im, err := im.ToChannels(c)
	if err != nil {
		return err
	}
	pix := im.Pix
	if im.Width != w || im.Height != h {
		if pix, err = p.Resizer.Resize(im.Pix, im.Height, im.Width, c, h, w); err != nil {
			return fmt.Errorf("resize %dx%d to %dx%d: %w", im.Width, im.Height, w, h, err)
		}
	}
	copy(dst, pix)
	return nil
}

// Load decodes src and fits it into dst for a model input of h x w x c.
func (p *Preparer) Load(src imageio.Source, h, w, c int, dst []uint8) error {
	im, err := src.Decode(p.Limits)
	if err != nil {
		return err
	}
	return p.Fit(im, h, w, c, dst)
}
