package imageio

import (
	"bytes"
	"errors"
	"runtime/metrics"
	"strconv"
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
		var im Image
		var err error
		// A raw frame's pixels are its bytes: accepting or refusing it copies at most
		// those (and its grey or RGB conversion).
		checkAlloc(t, "raw frame", 4*int64(len(rgb)), func() {
			im, err = Source{Frame: &Frame{RGB: rgb, Width: w, Height: h}}.Decode(fuzzLimits)
		})
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

// allocSlack is what any input may allocate beyond its pixels: decoder state, Huffman
// and palette tables, error messages, the reader over the bytes.
const allocSlack = 1 << 20

// bytesPerPixel bounds what decoding a pixel allocates along the way, at worst: a
// progressive 4:4:4 JPEG keeps 3x64 int32 coefficients a block (12 bytes a pixel)
// beside its YCbCr image (3), and FromImage draws a non-RGBA image into an RGBA one
// (4) before its own RGB copy (3); a 16-bit PNG decodes to RGBA64 (8), and the fast
// path may give up after allocating its own buffer.
const bytesPerPixel = 32

// checkAlloc runs decode and fails when it allocated more than allocSlack+bound
// bytes. The count is the runtime's cumulative heap allocation (the number
// runtime.MemStats.TotalAlloc reports, read through runtime/metrics, which does not
// stop the world as ReadMemStats does and so keeps the fuzzer's pace); the fuzz
// function runs alone in its worker, so the count is decode's own, give or take the
// fuzzer's few bytes and the small-object caches, which slack covers.
func checkAlloc(t *testing.T, what string, bound int64, decode func()) {
	t.Helper()
	before := heapAllocs()
	decode()
	if got := int64(heapAllocs() - before); got > allocSlack+bound {
		t.Fatalf("%s: allocated %d bytes, over the %d its size and the limits allow", what, got, allocSlack+bound)
	}
}

func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// decodeBound is the most pixel memory an encoded file of len(data) bytes can
// legitimately decode to under lim: never more than lim.MaxPixels pixels, and never
// more than its bytes can hold. A PNG's deflate stream inflates at most 1032 times
// (pngCanHold), so it holds at most 1032*8/bitsPerPixel pixels a byte, bitsPerPixel
// from the header (1 when unreadable); a JPEG needs a bit for each 8x8 block of its
// full-resolution component (jpegCanHold), so it holds at most 512 pixels a byte.
// Anything else decodes to nothing.
func decodeBound(data []byte, lim Limits) int64 {
	var perByte int64
	switch sniff(data) {
	case "PNG":
		bits := int64(1)
		if len(data) >= 8+8+13 && string(data[12:16]) == "IHDR" {
			depth, channels := int64(data[24]), map[byte]int64{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[data[25]]
			if depth >= 1 && depth <= 16 && channels > 0 {
				bits = depth * channels
			}
		}
		perByte = max(1, maxDeflateRatio*8/bits)
	case "JPEG":
		perByte = 512
	}
	// Rows and columns round up (an 8x8 block, a partial byte): one row and one column more.
	pixels := min(int64(lim.MaxPixels), perByte*int64(len(data))+2*int64(lim.MaxSide))
	return bytesPerPixel * pixels
}

// FuzzDecodeMemory decodes any bytes at the server's own limits (DefaultLimits:
// 8192 pixels a side, 50 million in all) and fails when decoding, accepted or refused,
// allocated more than the file could legitimately decode to (decodeBound). A small
// file whose header declares a huge image is the attack: before pngCanHold and
// jpegCanHold, a 75-byte PNG or a 600-byte JPEG saying 8192x6000 allocated 50 to 200
// MB. The seeds under testdata/fuzz/FuzzDecodeMemory include both, and the inputs of
// FuzzDecode's corpus. (FuzzDecode, in imageio_test.go, fuzzes at small limits.)
func FuzzDecodeMemory(f *testing.F) {
	f.Add(pngBomb(f, 8192, 6000))
	f.Add(jpegBomb(f, 8192, 6000))
	f.Add(encodePNG(f, testPattern(3, 3)))
	f.Add(encodeJPEG(f, testPattern(8, 8)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var im Image
		var err error
		checkAlloc(t, sniff(data)+" file of "+strconv.Itoa(len(data))+" bytes", decodeBound(data, DefaultLimits), func() {
			im, err = Decode(data, DefaultLimits)
		})
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
