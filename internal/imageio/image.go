package imageio

import (
	"fmt"

	"github.com/atelier-vision/atelier/internal/errkind"
)

// ErrInvalidImage marks input that is not a usable image: empty, corrupt, truncated,
// of an unsupported format, or raw bytes that disagree with the stated size.
var ErrInvalidImage = errkind.New(errkind.Invalid, "invalid image")

// ErrTooLarge marks an image whose size exceeds the configured Limits.
var ErrTooLarge = errkind.New(errkind.Invalid, "image too large")

// Image is an 8-bit image: Pix holds Height rows of Width pixels of Channels bytes
// (1 = grey, 3 = RGB), row-major with no padding.
type Image struct {
	Width, Height, Channels int
	Pix                     []uint8
}

// Limits bounds what the decoders accept.
type Limits struct {
	// MaxPixels is the largest width*height accepted.
	MaxPixels int
	// MaxSide is the largest width or height accepted.
	MaxSide int
}

// DefaultLimits accepts up to 50 megapixels and 8192 pixels a side.
var DefaultLimits = Limits{MaxPixels: 50_000_000, MaxSide: 8192}

// check returns ErrTooLarge (wrapped with the numbers) when w x h is over the limits.
func (l Limits) check(w, h int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: size %dx%d must be positive", ErrInvalidImage, w, h)
	}
	if w > l.MaxSide || h > l.MaxSide {
		return fmt.Errorf("%w: %dx%d exceeds the limit of %d pixels a side", ErrTooLarge, w, h, l.MaxSide)
	}
	if w*h > l.MaxPixels {
		return fmt.Errorf("%w: %dx%d is %d pixels, over the limit of %d", ErrTooLarge, w, h, w*h, l.MaxPixels)
	}
	return nil
}

// FromRGB wraps a raw interleaved RGB frame, checking its byte count and size.
func FromRGB(rgb []byte, width, height int, lim Limits) (Image, error) {
	if err := lim.check(width, height); err != nil {
		return Image{}, err
	}
	if want := width * height * 3; len(rgb) != want {
		return Image{}, fmt.Errorf("%w: raw frame of %dx%d needs %d bytes (width*height*3), got %d",
			ErrInvalidImage, width, height, want, len(rgb))
	}
	return Image{Width: width, Height: height, Channels: 3, Pix: rgb}, nil
}

// ToChannels returns the image with c channels (1 or 3). Grey to RGB repeats the
// grey value; RGB to grey uses the ITU-R 601 luma weights in the fixed-point form of
// PIL's convert("L"): L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
func (im Image) ToChannels(c int) (Image, error) {
	if c == im.Channels {
		return im, nil
	}
	n := im.Width * im.Height
	out := Image{Width: im.Width, Height: im.Height, Channels: c, Pix: make([]uint8, n*c)}
	switch {
	case im.Channels == 3 && c == 1:
		for i := 0; i < n; i++ {
			r, g, b := uint32(im.Pix[3*i]), uint32(im.Pix[3*i+1]), uint32(im.Pix[3*i+2])
			out.Pix[i] = uint8((r*19595 + g*38470 + b*7471 + 0x8000) >> 16)
		}
	case im.Channels == 1 && c == 3:
		for i := 0; i < n; i++ {
			v := im.Pix[i]
			out.Pix[3*i], out.Pix[3*i+1], out.Pix[3*i+2] = v, v, v
		}
	default:
		return Image{}, fmt.Errorf("%w: cannot convert %d channels to %d", ErrInvalidImage, im.Channels, c)
	}
	return out, nil
}

// Crop returns a copy of the rectangle [x0,x1) x [y0,y1), clamped to the image.
func (im Image) Crop(x0, y0, x1, y1 int) Image {
	x0, x1 = clamp(x0, 0, im.Width), clamp(x1, 0, im.Width)
	y0, y1 = clamp(y0, 0, im.Height), clamp(y1, 0, im.Height)
	if x1 <= x0 || y1 <= y0 {
		return Image{Channels: im.Channels}
	}
	w, c := x1-x0, im.Channels
	out := Image{Width: w, Height: y1 - y0, Channels: c, Pix: make([]uint8, w*(y1-y0)*c)}
	for y := y0; y < y1; y++ {
		copy(out.Pix[(y-y0)*w*c:(y-y0+1)*w*c], im.Pix[(y*im.Width+x0)*c:(y*im.Width+x1)*c])
	}
	return out
}

func clamp(v, lo, hi int) int {
	return max(lo, min(v, hi))
}

// Source is an image as a client sends it: Encoded JPEG/PNG bytes, or a raw Frame.
// Exactly one of the two is set.
type Source struct {
	Encoded []byte
	Frame   *Frame
}

// Frame is a raw interleaved RGB frame of Width x Height pixels.
type Frame struct {
	RGB           []byte
	Width, Height int
}

// Decode turns the source into an Image within the limits.
func (s Source) Decode(lim Limits) (Image, error) {
	switch {
	case s.Frame != nil && s.Encoded != nil:
		return Image{}, fmt.Errorf("%w: set either encoded bytes or a raw frame, not both", ErrInvalidImage)
	case s.Frame != nil:
		return FromRGB(s.Frame.RGB, s.Frame.Width, s.Frame.Height, lim)
	default:
		return Decode(s.Encoded, lim)
	}
}
