package dashboard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	_ "image/png" // frames from folders of PNG files
	"sync"
	"time"

	"github.com/atelier-vision/atelier/client/framesource"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// ringSize is how many recent frames a camera keeps (for the page and for alert
// thumbnails): 6.4 s at 10 frames a second.
const ringSize = 64

// frame is one frame read from a camera's source.
type frame struct {
	id       uint64
	captured time.Time
	image    *pb.Image
	w, h     int

	jpegOnce sync.Once
	jpeg     []byte // what the browser gets: the source's JPEG, or the frame encoded once
	jpegErr  error
}

// JPEG returns the frame as JPEG bytes: a JPEG source's own bytes, anything else
// encoded (once, and only if a browser asks for it).
func (f *frame) JPEG() ([]byte, error) {
	f.jpegOnce.Do(func() {
		enc := f.image.GetEncoded()
		if isJPEG(enc) {
			f.jpeg = enc
			return
		}
		var img image.Image
		if raw := f.image.GetRaw(); raw != nil {
			rgba := image.NewRGBA(image.Rect(0, 0, int(raw.Width), int(raw.Height)))
			for i, j := 0, 0; i+2 < len(raw.Rgb); i, j = i+3, j+4 {
				rgba.Pix[j], rgba.Pix[j+1], rgba.Pix[j+2], rgba.Pix[j+3] = raw.Rgb[i], raw.Rgb[i+1], raw.Rgb[i+2], 255
			}
			img = rgba
		} else if img, _, f.jpegErr = image.Decode(bytes.NewReader(enc)); f.jpegErr != nil {
			return
		}
		var buf bytes.Buffer
		f.jpegErr = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80})
		f.jpeg = buf.Bytes()
	})
	return f.jpeg, f.jpegErr
}

func isJPEG(b []byte) bool { return len(b) > 2 && b[0] == 0xff && b[1] == 0xd8 }

// size reads an image's size from its header (or a raw frame's fields).
func size(img *pb.Image) (int, int, error) {
	if raw := img.GetRaw(); raw != nil {
		return int(raw.Width), int(raw.Height), nil
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(img.GetEncoded()))
	if err != nil {
		return 0, 0, fmt.Errorf("reading a frame's size: %w", err)
	}
	return cfg.Width, cfg.Height, nil
}

// errNoFrames is a source that opened but holds no frame: looping it would spin.
var errNoFrames = errors.New("the source holds no frames")

// readLoop reads src over and over like a live camera, one frame every 1/fps seconds
// whether or not a stream is taking them, and hands each to onFrame. It returns when
// ctx is done or the source fails (open, read, or no frames at all).
func readLoop(ctx context.Context, src string, fps float64, onFrame func(*pb.Image, int, int)) error {
	tick := time.NewTicker(time.Duration(float64(time.Second) / fps))
	defer tick.Stop()
	for {
		s, err := framesource.Open(ctx, src, framesource.Options{})
		if err != nil {
			return err
		}
		n := 0
		for {
			img, err := s.Next()
			if err != nil {
				break
			}
			w, h, err := size(img)
			if err != nil {
				s.Close()
				return fmt.Errorf("frame %d of %s: %w", n+1, src, err)
			}
			n++
			onFrame(img, w, h)
			select {
			case <-tick.C:
			case <-ctx.Done():
				s.Close()
				return ctx.Err()
			}
		}
		s.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := s.Err(); err != nil {
			return err
		}
		if n == 0 {
			return errNoFrames
		}
	}
}
