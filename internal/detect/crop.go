package detect

import (
	"math"
	"slices"

	"github.com/atelier-vision/atelier/internal/imageio"
)

// RingWidth is how many pixels around a box Crop reads to estimate the background.
const RingWidth = 4

// Crop returns what the classifier sees of a detection: the box's pixels of the
// full-resolution image, centred on a black square as wide as the box's longer side.
//
// The classifier learnt garments framed the Fashion-MNIST way: centred on black, the
// longer side filling the frame, the aspect ratio kept. Resizing the bare box to the
// classifier's square input would stretch a trouser sideways; padding it to a square
// first keeps its shape. With levels set, the background is taken out too: its level,
// per channel, is the median of a ring RingWidth pixels wide just outside the box, and
// the crop's values are mapped from [level, 255] to [0, 255], so a garment on a plain
// background arrives on black as the classifier's training garments did.
//
// The box is widened to whole pixels and clamped to the image; an empty box yields a
// single black pixel.
func Crop(im imageio.Image, b Box, levels bool) imageio.Image {
	x0, y0 := int(math.Floor(float64(b.XMin))), int(math.Floor(float64(b.YMin)))
	x1, y1 := int(math.Ceil(float64(b.XMax))), int(math.Ceil(float64(b.YMax)))
	cut := im.Crop(x0, y0, x1, y1)
	side := max(cut.Width, cut.Height, 1)
	c := im.Channels
	out := imageio.Image{Width: side, Height: side, Channels: c, Pix: make([]uint8, side*side*c)}
	if cut.Width == 0 {
		return out
	}
	if levels {
		bg := background(im, max(x0, 0), max(y0, 0), x0+cut.Width, y0+cut.Height)
		for i, v := range cut.Pix {
			cut.Pix[i] = stretch(v, bg[i%c])
		}
	}
	ox, oy := (side-cut.Width)/2, (side-cut.Height)/2
	for y := 0; y < cut.Height; y++ {
		row := cut.Pix[y*cut.Width*c : (y+1)*cut.Width*c]
		copy(out.Pix[((oy+y)*side+ox)*c:], row)
	}
	return out
}

// background returns the median of each channel over the ring of RingWidth pixels
// around [x0,x1) x [y0,y1) that lies inside the image (0 when none does).
func background(im imageio.Image, x0, y0, x1, y1 int) []uint8 {
	c := im.Channels
	values := make([][]uint8, c)
	for y := max(y0-RingWidth, 0); y < min(y1+RingWidth, im.Height); y++ {
		for x := max(x0-RingWidth, 0); x < min(x1+RingWidth, im.Width); x++ {
			if x >= x0 && x < x1 && y >= y0 && y < y1 {
				continue
			}
			p := im.Pix[(y*im.Width+x)*c:]
			for k := range c {
				values[k] = append(values[k], p[k])
			}
		}
	}
	bg := make([]uint8, c)
	for k, v := range values {
		if len(v) > 0 {
			slices.Sort(v)
			bg[k] = v[len(v)/2]
		}
	}
	return bg
}

// stretch maps v from [bg, 255] to [0, 255], rounding; values below bg become 0.
func stretch(v, bg uint8) uint8 {
	if v <= bg {
		return 0
	}
	span := 255 - int(bg)
	return uint8((int(v-bg)*255 + span/2) / span)
}
