package imageio

import (
	"bytes"
	"testing"
)

var fuzzLimits = Limits{MaxPixels: 1 << 20, MaxSide: 2048}

func checkImage(t *testing.T, im Image) {
	t.Helper()
	if im.Width <= 0 || im.Height <= 0 || im.Width > fuzzLimits.MaxSide || im.Height > fuzzLimits.MaxSide ||
		im.Width*im.Height > fuzzLimits.MaxPixels {
		t.Fatalf("accepted a %dx%d image, beyond %+v", im.Width, im.Height, fuzzLimits)
	}
	if im.Channels != 1 && im.Channels != 3 || len(im.Pix) != im.Width*im.Height*im.Channels {
		t.Fatalf("%dx%dx%d image with %d bytes", im.Width, im.Height, im.Channels, len(im.Pix))
	}
	for _, c := range []int{1, 3} {
		out, err := im.ToChannels(c)
		if err != nil || len(out.Pix) != im.Width*im.Height*c {
			t.Fatalf("ToChannels(%d): %v, %d bytes", c, err, len(out.Pix))
		}
	}
	crop := im.Crop(-1, 1, im.Width+5, im.Height/2)
	if len(crop.Pix) != crop.Width*crop.Height*crop.Channels {
		t.Fatalf("crop %dx%dx%d with %d bytes", crop.Width, crop.Height, crop.Channels, len(crop.Pix))
	}
}

// FuzzRaw feeds raw RGB frames with any stated size: a frame is accepted only when its
// bytes match width*height*3 within the limits, and then converts, crops and encodes
// cleanly. (FuzzDecode, in imageio_test.go, covers encoded images.)
func FuzzRaw(f *testing.F) {
	f.Add(make([]byte, 12), 2, 2)
	f.Add(make([]byte, 3), 1, 1)
	f.Add([]byte{1, 2}, -1, 4)
	f.Add(make([]byte, 12), 1<<31, 1<<31)
	f.Fuzz(func(t *testing.T, rgb []byte, w, h int) {
		im, err := Source{Frame: &Frame{RGB: rgb, Width: w, Height: h}}.Decode(fuzzLimits)
		if err != nil {
			return
		}
		if len(rgb) != w*h*3 {
			t.Fatalf("accepted %d bytes for %dx%d", len(rgb), w, h)
		}
		checkImage(t, im)
		enc, err := EncodePNG(im)
		if err != nil {
			t.Fatalf("EncodePNG: %v", err)
		}
		back, err := Decode(enc, fuzzLimits)
		if err != nil || !bytes.Equal(back.Pix, im.Pix) {
			t.Fatalf("PNG round trip: %v, pixels equal %v", err, bytes.Equal(back.Pix, im.Pix))
		}
	})
}
