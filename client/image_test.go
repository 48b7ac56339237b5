package client_test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/atelier-vision/atelier/client"
)

func TestImageOf(t *testing.T) {
	gray := image.NewGray(image.Rect(0, 0, 2, 1))
	gray.Pix = []uint8{7, 200}
	rgba := image.NewRGBA(image.Rect(0, 0, 2, 1))
	rgba.Set(0, 0, color.NRGBA{200, 100, 50, 255})
	rgba.Set(1, 0, color.NRGBA{200, 100, 50, 128}) // stored premultiplied
	nrgba := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	nrgba.Pix = []uint8{1, 2, 3, 0, 4, 5, 6, 255}
	pal := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.RGBA{9, 8, 7, 255}, color.RGBA{1, 1, 1, 255}})
	pal.Pix = []uint8{1, 0}
	big := image.NewGray(image.Rect(0, 0, 4, 4))
	for i := range big.Pix {
		big.Pix[i] = uint8(i)
	}
	cases := []struct {
		name string
		img  image.Image
		w, h uint32
		rgb  []byte
	}{
		{"gray stays gray", gray, 2, 1, []byte{7, 7, 7, 200, 200, 200}},
		{"rgba un-premultiplied (to rounding), alpha dropped", rgba, 2, 1, []byte{200, 100, 50, 199, 99, 49}},
		{"nrgba alpha dropped", nrgba, 2, 1, []byte{1, 2, 3, 4, 5, 6}},
		{"paletted via the generic path", pal, 2, 1, []byte{1, 1, 1, 9, 8, 7}},
		{"sub-image keeps its own bounds", big.SubImage(image.Rect(1, 2, 3, 3)), 2, 1, []byte{9, 9, 9, 10, 10, 10}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := client.ImageOf(tc.img).GetRaw()
			if raw.Width != tc.w || raw.Height != tc.h || !bytes.Equal(raw.Rgb, tc.rgb) {
				t.Fatalf("got %dx%d %v, want %dx%d %v", raw.Width, raw.Height, raw.Rgb, tc.w, tc.h, tc.rgb)
			}
		})
	}
}

func TestImageFileAndBytes(t *testing.T) {
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 3, 3)))
	path := filepath.Join(t.TempDir(), "x.png")
	os.WriteFile(path, buf.Bytes(), 0o600)
	img, err := client.ImageFile(path)
	if err != nil || !bytes.Equal(img.GetEncoded(), buf.Bytes()) {
		t.Fatalf("ImageFile: got %d bytes, %v; want the file's %d bytes", len(img.GetEncoded()), err, buf.Len())
	}
	if got := client.ImageBytes(buf.Bytes()).GetEncoded(); !bytes.Equal(got, buf.Bytes()) {
		t.Fatalf("ImageBytes changed the bytes")
	}
	if _, err := client.ImageFile(filepath.Join(t.TempDir(), "missing.png")); !os.IsNotExist(err) {
		t.Fatalf("ImageFile of a missing file: got %v, want a not-exist error", err)
	}
}

func TestFramesNumbersFromOne(t *testing.T) {
	var ids []uint64
	for f := range frames(5) {
		if f.CaptureTime == nil || f.Image == nil {
			t.Fatalf("frame %d lacks a capture time or image", f.FrameId)
		}
		ids = append(ids, f.FrameId)
		if len(ids) == 3 {
			break
		}
	}
	if len(ids) != 3 || ids[0] != 1 || ids[2] != 3 {
		t.Fatalf("got ids %v, want [1 2 3]", ids)
	}
}
