package imageio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testPattern(w, h int) *image.RGBA {
	im := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			im.Set(x, y, color.RGBA{uint8(x * 7), uint8(y * 11), uint8(x + y), 255})
		}
	}
	return im
}

func encodePNG(t testing.TB, im image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, im); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodeJPEG(t testing.TB, im image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, im, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pngBomb returns a valid PNG whose header claims w x h pixels (the IHDR is rewritten
// and its CRC fixed), though its data holds a tiny image.
func pngBomb(t testing.TB, w, h uint32) []byte {
	data := encodePNG(t, testPattern(2, 2))
	ihdr := data[8+8 : 8+8+13] // after signature, length and type
	binary.BigEndian.PutUint32(ihdr[0:4], w)
	binary.BigEndian.PutUint32(ihdr[4:8], h)
	binary.BigEndian.PutUint32(data[8+8+13:], crc32.ChecksumIEEE(data[8+4:8+8+13]))
	return data
}

// jpegBomb returns a small JPEG whose frame header (SOF0) claims w x h pixels.
func jpegBomb(t testing.TB, w, h uint16) []byte {
	data := encodeJPEG(t, testPattern(8, 8))
	sof := bytes.Index(data, []byte{0xff, 0xc0})
	if sof < 0 {
		t.Fatal("no SOF0 marker")
	}
	// marker (2), length (2), precision (1), then height and width
	binary.BigEndian.PutUint16(data[sof+5:], h)
	binary.BigEndian.PutUint16(data[sof+7:], w)
	return data
}

func TestDecodeGood(t *testing.T) {
	grey := image.NewGray(image.Rect(0, 0, 5, 4))
	for i := range grey.Pix {
		grey.Pix[i] = uint8(i * 9)
	}
	tests := []struct {
		name         string
		data         []byte
		w, h, c      int
		wantExactPix []uint8
	}{
		{"png rgb", encodePNG(t, testPattern(6, 3)), 6, 3, 3, nil},
		{"png grey", encodePNG(t, grey), 5, 4, 1, grey.Pix},
		{"jpeg rgb", encodeJPEG(t, testPattern(16, 8)), 16, 8, 3, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			im, err := Decode(tc.data, DefaultLimits)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if im.Width != tc.w || im.Height != tc.h || im.Channels != tc.c {
				t.Fatalf("got %dx%dx%d, want %dx%dx%d", im.Width, im.Height, im.Channels, tc.w, tc.h, tc.c)
			}
			if len(im.Pix) != tc.w*tc.h*tc.c {
				t.Fatalf("got %d bytes, want %d", len(im.Pix), tc.w*tc.h*tc.c)
			}
			if tc.wantExactPix != nil && !bytes.Equal(im.Pix, tc.wantExactPix) {
				t.Fatalf("got pixels %v, want %v", im.Pix, tc.wantExactPix)
			}
		})
	}
}

func TestDecodePNGRGBExact(t *testing.T) {
	src := testPattern(7, 5)
	im, err := Decode(encodePNG(t, src), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	for y := 0; y < 5; y++ {
		for x := 0; x < 7; x++ {
			c := src.RGBAAt(x, y)
			i := (y*7 + x) * 3
			if got := [3]uint8{im.Pix[i], im.Pix[i+1], im.Pix[i+2]}; got != [3]uint8{c.R, c.G, c.B} {
				t.Fatalf("pixel (%d,%d): got %v, want %v", x, y, got, c)
			}
		}
	}
}

func TestDecodeBad(t *testing.T) {
	jpg := encodeJPEG(t, testPattern(64, 64))
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrInvalidImage},
		{"not an image", []byte("hello, this is plain text and not a picture"), ErrInvalidImage},
		{"truncated jpeg", jpg[:len(jpg)/2], ErrInvalidImage},
		{"jpeg header only", jpg[:20], ErrInvalidImage},
		{"gif-like magic", []byte("GIF89a\x01\x00\x01\x00"), ErrInvalidImage},
		{"png bomb 100000x100000", pngBomb(t, 100000, 100000), ErrTooLarge},
		{"png bomb 8000x8000", pngBomb(t, 8000, 8000), ErrTooLarge},
		{"png zero width", pngBomb(t, 0, 10), ErrInvalidImage},
		{"png sides past image/png's own bound", pngBomb(t, 1<<31-1, 1<<31-1), ErrInvalidImage},
		{"jpeg bomb 65000x65000", jpegBomb(t, 65000, 65000), ErrTooLarge},
		{"jpeg over the pixel limit 8000x8000", jpegBomb(t, 8000, 8000), ErrTooLarge},
		{"jpeg zero height", jpegBomb(t, 10, 0), ErrInvalidImage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.data, DefaultLimits)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestFromRGB(t *testing.T) {
	tests := []struct {
		name string
		n    int
		w, h int
		want error
	}{
		{"exact", 2 * 3 * 3, 2, 3, nil},
		{"one byte short", 2*3*3 - 1, 2, 3, ErrInvalidImage},
		{"one byte over", 2*3*3 + 1, 2, 3, ErrInvalidImage},
		{"zero size", 0, 0, 0, ErrInvalidImage},
		{"too wide", 3, 9000, 1, ErrTooLarge},
		// The API's uint32 sides, at their largest: refused before width*height*3.
		{"sides of 2^32-1", 3, 1<<32 - 1, 1<<32 - 1, ErrTooLarge},
		{"zero width", 0, 0, 5, ErrInvalidImage},
		{"over the pixel limit", 3, 8000, 8000, ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromRGB(make([]byte, tc.n), tc.w, tc.h, DefaultLimits)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestToChannels(t *testing.T) {
	rgb := Image{Width: 2, Height: 1, Channels: 3, Pix: []uint8{255, 0, 0, 10, 200, 30}}
	grey, err := rgb.ToChannels(1)
	if err != nil {
		t.Fatal(err)
	}
	// PIL's convert("L") gives 76 and 124 for these pixels.
	if want := []uint8{76, 124}; !bytes.Equal(grey.Pix, want) {
		t.Fatalf("got %v, want %v", grey.Pix, want)
	}
	back, err := grey.ToChannels(3)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint8{76, 76, 76, 124, 124, 124}; !bytes.Equal(back.Pix, want) {
		t.Fatalf("got %v, want %v", back.Pix, want)
	}
}

func TestCrop(t *testing.T) {
	im := Image{Width: 3, Height: 2, Channels: 1, Pix: []uint8{1, 2, 3, 4, 5, 6}}
	tests := []struct {
		name           string
		x0, y0, x1, y1 int
		want           []uint8
	}{
		{"inside", 1, 0, 3, 2, []uint8{2, 3, 5, 6}},
		{"clamped", -5, 1, 10, 9, []uint8{4, 5, 6}},
		{"empty", 2, 1, 2, 2, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := im.Crop(tc.x0, tc.y0, tc.x1, tc.y1)
			if !bytes.Equal(got.Pix, tc.want) {
				t.Fatalf("got %v, want %v", got.Pix, tc.want)
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	im := FromImage(testPattern(9, 4))
	data, err := EncodePNG(im)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(data, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Pix, im.Pix) {
		t.Fatal("PNG round trip changed the pixels")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encodePNG(f, testPattern(3, 3)))
	f.Add(encodeJPEG(f, testPattern(8, 8)))
	f.Add(pngBomb(f, 60000, 60000))
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := Decode(data, Limits{MaxPixels: 1 << 20, MaxSide: 4096})
		if err != nil {
			if !errors.Is(err, ErrInvalidImage) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if len(im.Pix) != im.Width*im.Height*im.Channels {
			t.Fatalf("got %d bytes for %dx%dx%d", len(im.Pix), im.Width, im.Height, im.Channels)
		}
	})
}

// TestPNGTooShortForItsHeader: a PNG whose bytes cannot hold the image its header
// declares (deflate shrinks at most 1032 times) is refused before any pixel memory is
// allocated; one within the limits that can hold it is decoded as before.
func TestPNGTooShortForItsHeader(t *testing.T) {
	bomb := pngBomb(t, 8192, 6000)
	before := heapAllocs()
	_, err := Decode(bomb, DefaultLimits)
	allocated := heapAllocs() - before
	if !errors.Is(err, ErrInvalidImage) || !strings.Contains(err.Error(), "cannot hold the 8192x6000 image its header declares") {
		t.Fatalf("got %v, want the bytes named too few for the header", err)
	}
	if allocated > 1<<20 {
		t.Fatalf("refusing a %d-byte PNG allocated %d bytes, want under 1 MiB", len(bomb), allocated)
	}
	// Over the limits, the limit is what the error names.
	if _, err := Decode(pngBomb(t, 60000, 60000), DefaultLimits); err == nil || strings.Contains(err.Error(), "cannot hold") {
		t.Fatalf("a PNG over the limits: got %v, want the limit's error", err)
	}
	// A real, highly compressible image at the same size is not refused by the bound.
	flat := encodePNG(t, image.NewGray(image.Rect(0, 0, 2048, 2048)))
	if im, err := Decode(flat, DefaultLimits); err != nil || im.Width != 2048 {
		t.Fatalf("a flat 2048x2048 PNG of %d bytes: %v", len(flat), err)
	}
}

// TestJPEGTooShortForItsHeader: a JPEG whose bytes cannot hold the image its header
// declares (at least one bit for each 8x8 block) is refused before image/jpeg
// allocates the picture; real JPEGs at their most compressed are decoded as before.
func TestJPEGTooShortForItsHeader(t *testing.T) {
	bomb := jpegBomb(t, 8192, 6000)
	before := heapAllocs()
	_, err := Decode(bomb, DefaultLimits)
	allocated := heapAllocs() - before
	if !errors.Is(err, ErrInvalidImage) || !strings.Contains(err.Error(), "cannot hold the 8192x6000 image its header declares") {
		t.Fatalf("got %v, want the bytes named too few for the header", err)
	}
	if allocated > 1<<20 {
		t.Fatalf("refusing a %d-byte JPEG allocated %d bytes, want under 1 MiB", len(bomb), allocated)
	}
	if _, err := Decode(jpegBomb(t, 8000, 8000), DefaultLimits); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a JPEG over the limits: got %v, want the limit's error", err)
	}
	// A flat picture from image/jpeg (6 bits a block) and one libjpeg optimised and made
	// progressive (2 bits a block, 256 pixels a byte: half the bound) both decode.
	flat := encodeJPEG(t, image.NewGray(image.Rect(0, 0, 2048, 2048)))
	if im, err := Decode(flat, DefaultLimits); err != nil || im.Width != 2048 {
		t.Fatalf("a flat 2048x2048 JPEG of %d bytes: %v", len(flat), err)
	}
	tight, err := os.ReadFile(filepath.Join("testdata", "flat-2048-progressive-optimized.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if im, err := Decode(tight, DefaultLimits); err != nil || im.Width != 2048 || im.Height != 2048 {
		t.Fatalf("libjpeg's flat 2048x2048 progressive JPEG of %d bytes: %v", len(tight), err)
	}
	// One byte short of the bound for its size is refused; at the bound it is not.
	if err := jpegCanHold(2048*2048/512-1, 2048, 2048); err == nil {
		t.Fatal("a byte under one bit a block was accepted")
	}
	if err := jpegCanHold(2048*2048/512, 2048, 2048); err != nil {
		t.Fatalf("one bit a block refused: %v", err)
	}
}
