package imageio

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
)

// pngTestLimits is roomy enough for every test image, small enough for the fuzzer.
var pngTestLimits = Limits{MaxPixels: 1 << 20, MaxSide: 2048}

// checkFastPNG decodes data with the fast path and with the standard path, fails the
// test unless the fast path handled it exactly when wantFast says, and, when it did,
// unless image/png decodes it too and FromImage of that is the same Image. Decode must
// also agree with the standard path, error message included.
func checkFastPNG(t *testing.T, data []byte, lim Limits, wantFast bool) {
	t.Helper()
	fast, ok := decodePNGFast(data, lim)
	if ok != wantFast {
		_, err := png.Decode(bytes.NewReader(data))
		t.Fatalf("fast path handled it: %v, want %v (image/png says %v)", ok, wantFast, err)
	}
	if ok {
		std, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("fast path decoded what image/png refuses: %v", err)
		}
		if want := FromImage(std); !sameImage(fast, want) {
			t.Fatalf("fast path gave %s, image/png %s", describe(fast), describe(want))
		}
	}
	got, gotErr := Decode(data, lim)
	want, wantErr := decode(data, lim, false)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !sameImage(got, want) {
		t.Fatalf("Decode gave %s, %v; the standard path %s, %v", describe(got), gotErr, describe(want), wantErr)
	}
}

func sameImage(a, b Image) bool {
	return a.Width == b.Width && a.Height == b.Height && a.Channels == b.Channels && bytes.Equal(a.Pix, b.Pix)
}

func describe(im Image) string {
	n := min(len(im.Pix), 12)
	return fmt.Sprintf("%dx%dx%d %v...", im.Width, im.Height, im.Channels, im.Pix[:n])
}

// noisyPattern mixes smooth gradients with noise, so png.Encoder's per-row filter
// choice varies across the image.
func noisyPattern(w, h int, seed uint64) func(x, y int) (r, g, b, a uint8) {
	rng := rand.New(rand.NewPCG(seed, 1))
	noise := make([]uint8, w*h*4)
	for i := range noise {
		noise[i] = uint8(rng.IntN(256))
	}
	return func(x, y int) (r, g, b, a uint8) {
		n := noise[4*(y*w+x):]
		if (x/8+y/8)%3 == 0 {
			return n[0], n[1], n[2], n[3]
		}
		return uint8(x * 3), uint8(y * 5), uint8(x + 2*y), uint8(255 - x)
	}
}

func testImages(w, h int) map[string]struct {
	img  image.Image
	fast bool
} {
	px := noisyPattern(w, h, uint64(w*1000+h))
	r := image.Rect(0, 0, w, h)
	grey, gray16 := image.NewGray(r), image.NewGray16(r)
	rgba, nrgba, translucent := image.NewRGBA(r), image.NewNRGBA(r), image.NewRGBA(r)
	palette := make(color.Palette, 200)
	for i := range palette {
		palette[i] = color.RGBA{uint8(i * 7), uint8(i * 13), uint8(255 - i), 255}
	}
	paletted := image.NewPaletted(r, palette)
	small := image.NewPaletted(r, palette[:4])
	withAlpha := append(color.Palette{color.NRGBA{1, 2, 3, 100}}, palette[1:40]...)
	transparent := image.NewPaletted(r, withAlpha)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			cr, cg, cb, ca := px(x, y)
			grey.SetGray(x, y, color.Gray{cr})
			gray16.SetGray16(x, y, color.Gray16{uint16(cr)<<8 | uint16(cg)})
			rgba.SetRGBA(x, y, color.RGBA{cr, cg, cb, 255})
			nrgba.SetNRGBA(x, y, color.NRGBA{cr, cg, cb, ca})
			translucent.SetRGBA(x, y, color.RGBA{cr / 2, cg / 2, cb / 2, 128 + cr/2})
			paletted.SetColorIndex(x, y, cr%200)
			small.SetColorIndex(x, y, cr%4)
			transparent.SetColorIndex(x, y, cr%40)
		}
	}
	type entry = struct {
		img  image.Image
		fast bool
	}
	return map[string]entry{
		"grey":                 {grey, true},
		"rgb":                  {rgba, true},
		"nrgba":                {nrgba, true},
		"rgba translucent":     {translucent, true},
		"paletted 8-bit":       {paletted, true},
		"gray16":               {gray16, false},
		"paletted 2-bit":       {small, false},
		"paletted transparent": {transparent, false},
	}
}

func TestDecodePNGFastMatchesImagePNG(t *testing.T) {
	levels := map[string]png.CompressionLevel{
		"default": png.DefaultCompression, "none": png.NoCompression,
		"speed": png.BestSpeed, "best": png.BestCompression,
	}
	sizes := [][2]int{{1, 1}, {28, 28}, {3, 5}, {33, 7}, {1, 9}, {9, 1}, {640, 480}}
	for _, size := range sizes {
		for name, tc := range testImages(size[0], size[1]) {
			for lname, level := range levels {
				if size[0] == 640 && lname != "default" && lname != "speed" {
					continue // the big image once or twice is enough, and keeps the test quick
				}
				t.Run(fmt.Sprintf("%dx%d/%s/%s", size[0], size[1], name, lname), func(t *testing.T) {
					var buf bytes.Buffer
					if err := (&png.Encoder{CompressionLevel: level}).Encode(&buf, tc.img); err != nil {
						t.Fatal(err)
					}
					checkFastPNG(t, buf.Bytes(), pngTestLimits, tc.fast)
				})
			}
		}
	}
}

// testChunk is one PNG chunk for pngFile to write.
type testChunk struct {
	typ  string
	data []byte
}

// pngFile writes the signature and the chunks, each with its correct CRC.
func pngFile(chunks ...testChunk) []byte {
	out := []byte(pngSignature)
	for _, c := range chunks {
		out = binary.BigEndian.AppendUint32(out, uint32(len(c.data)))
		start := len(out)
		out = append(out, c.typ...)
		out = append(out, c.data...)
		out = binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[start:]))
	}
	return out
}

func ihdr(w, h int, depth, colorType, interlace byte) testChunk {
	b := binary.BigEndian.AppendUint32(nil, uint32(w))
	b = binary.BigEndian.AppendUint32(b, uint32(h))
	return testChunk{"IHDR", append(b, depth, colorType, 0, 0, interlace)}
}

var iend = testChunk{"IEND", nil}

// zlibWriters keeps one zlib.Writer a level: a new one allocates about a megabyte, and
// FuzzPNG compresses once an input.
var zlibWriters = struct {
	sync.Mutex
	byLevel map[int]*zlib.Writer
}{byLevel: map[int]*zlib.Writer{}}

func zlibBytes(t testing.TB, raw []byte, level int) []byte {
	zlibWriters.Lock()
	defer zlibWriters.Unlock()
	var buf bytes.Buffer
	w := zlibWriters.byLevel[level]
	if w == nil {
		var err error
		if w, err = zlib.NewWriterLevel(&buf, level); err != nil {
			t.Fatal(err)
		}
		zlibWriters.byLevel[level] = w
	}
	w.Reset(&buf)
	w.Write(raw)
	w.Close()
	return buf.Bytes()
}

// idats splits a zlib stream into n IDAT chunks of roughly equal size.
func idats(stream []byte, n int) []testChunk {
	var out []testChunk
	for i := 0; i < n; i++ {
		out = append(out, testChunk{"IDAT", stream[i*len(stream)/n : (i+1)*len(stream)/n]})
	}
	return out
}

// filterRows applies PNG filter filterOf(y) to each row of raw pixel bytes (bpp bytes
// a pixel) and returns the scanlines, each led by its filter byte, as a PNG encoder
// would before compressing them.
func filterRows(rows [][]byte, bpp int, filterOf func(y int) byte) []byte {
	var out []byte
	prev := make([]byte, len(rows[0]))
	for y, row := range rows {
		f := filterOf(y)
		out = append(out, f)
		for i, v := range row {
			var a, c uint8
			if i >= bpp {
				a, c = row[i-bpp], prev[i-bpp]
			}
			b := prev[i]
			switch f {
			case 1:
				v -= a
			case 2:
				v -= b
			case 3:
				v -= uint8((int(a) + int(b)) / 2)
			case 4:
				v -= paethRef(a, b, c)
			}
			out = append(out, v)
		}
		prev = row
	}
	return out
}

// paethRef is the Paeth predictor as the PNG spec (section 9.4) writes it: whichever of
// left (a), above (b) and upper-left (c) is nearest to a+b-c, a then b on ties.
func paethRef(a, b, c uint8) uint8 {
	p := int(a) + int(b) - int(c)
	pa, pb, pc := p-int(a), p-int(b), p-int(c)
	pa, pb, pc = max(pa, -pa), max(pb, -pb), max(pc, -pc)
	if pa <= pb && pa <= pc {
		return a
	}
	if pb <= pc {
		return b
	}
	return c
}

// handMade builds a w x h PNG of colour type ct from random pixels: every row with
// filter filterOf(y), the zlib stream split over nIDAT chunks, extra chunks between
// IHDR and IDAT. It returns the file and the raw (unfiltered) pixel bytes.
func handMade(t testing.TB, w, h int, ct byte, filterOf func(int) byte, nIDAT int, extra ...testChunk) ([]byte, []byte) {
	bpp := map[byte]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ct]
	rng := rand.New(rand.NewPCG(uint64(w*h), uint64(ct)))
	var rows [][]byte
	var raw []byte
	for y := 0; y < h; y++ {
		row := make([]byte, w*bpp)
		for i := range row {
			// Half the rows smooth, half noisy, so every filter meets both.
			if y%2 == 0 {
				row[i] = uint8(i*3 + y)
			} else {
				row[i] = uint8(rng.IntN(256))
			}
		}
		rows = append(rows, row)
		raw = append(raw, row...)
	}
	chunks := []testChunk{ihdr(w, h, 8, ct, 0)}
	chunks = append(chunks, extra...)
	chunks = append(chunks, idats(zlibBytes(t, filterRows(rows, bpp, filterOf), zlib.DefaultCompression), nIDAT)...)
	return pngFile(append(chunks, iend)...), raw
}

func testPalette(n int) []byte {
	p := make([]byte, 3*n)
	for i := range p {
		p[i] = uint8(i*37 + 11)
	}
	return p
}

func TestDecodePNGFastFilters(t *testing.T) {
	filters := map[string]func(int) byte{
		"none": func(int) byte { return 0 }, "sub": func(int) byte { return 1 },
		"up": func(int) byte { return 2 }, "average": func(int) byte { return 3 },
		"paeth": func(int) byte { return 4 }, "mixed": func(y int) byte { return byte(y % 5) },
	}
	for _, ct := range []byte{0, 2, 3, 4, 6} {
		for fname, filterOf := range filters {
			for _, size := range [][2]int{{1, 1}, {1, 6}, {7, 6}, {28, 28}, {31, 17}} {
				t.Run(fmt.Sprintf("type%d/%s/%dx%d", ct, fname, size[0], size[1]), func(t *testing.T) {
					var extra []testChunk
					if ct == 3 {
						// 200 entries: the random indexes past them are opaque black.
						extra = append(extra, testChunk{"PLTE", testPalette(200)})
					}
					data, raw := handMade(t, size[0], size[1], ct, filterOf, 3, extra...)
					checkFastPNG(t, data, pngTestLimits, true)
					if ct == 0 || ct == 2 {
						// Grey and RGB pixels are the raw bytes: a check independent of image/png.
						if im, _ := decodePNGFast(data, pngTestLimits); !bytes.Equal(im.Pix, raw) {
							t.Fatalf("pixels differ from the raw rows")
						}
					}
				})
			}
		}
	}
}

// TestDecodePNGFastFallback covers files the fast path must leave to image/png, valid
// or not, and a few unusual ones it handles.
func TestDecodePNGFastFallback(t *testing.T) {
	mixed := func(y int) byte { return byte(y % 5) }
	good, _ := handMade(t, 9, 7, 2, mixed, 1)
	rows := filterRows([][]byte{make([]byte, 27), make([]byte, 27)}, 3, mixed)
	withIDAT := func(stream []byte, more ...testChunk) []byte {
		return pngFile(append([]testChunk{ihdr(9, 2, 8, 2, 0), {"IDAT", stream}}, append(more, iend)...)...)
	}
	stream := zlibBytes(t, rows, zlib.BestSpeed)
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-20] ^= 1
	tests := []struct {
		name string
		data []byte
		fast bool
	}{
		{"plain", good, true},
		{"text chunk before IDAT", must(handMade(t, 9, 7, 2, mixed, 2, testChunk{"tEXt", []byte("a\x00b")})), true},
		{"PLTE in an RGB image", must(handMade(t, 9, 7, 2, mixed, 1, testChunk{"PLTE", testPalette(5)})), true},
		{"empty IDAT chunks around", withIDAT(nil, testChunk{"IDAT", stream}, testChunk{"IDAT", nil}), true},
		{"ancillary chunk after IDAT", withIDAT(stream, testChunk{"tIME", make([]byte, 7)}), true},
		{"interlaced", pngFile(ihdr(9, 2, 8, 2, 1), testChunk{"IDAT", stream}, iend), false},
		{"16-bit", pngFile(ihdr(9, 2, 16, 0, 0), testChunk{"IDAT", stream}, iend), false},
		{"4-bit grey", pngFile(ihdr(9, 2, 4, 0, 0), testChunk{"IDAT", stream}, iend), false},
		{"tRNS", must(handMade(t, 9, 7, 2, mixed, 1, testChunk{"tRNS", make([]byte, 6)})), false},
		{"unknown critical chunk", must(handMade(t, 9, 7, 2, mixed, 1, testChunk{"ABCD", nil})), false},
		{"PLTE in a grey image", must(handMade(t, 9, 7, 0, mixed, 1, testChunk{"PLTE", testPalette(5)})), false},
		{"palette without PLTE", must(handMade(t, 9, 7, 3, mixed, 1)), false},
		{"PLTE too long", must(handMade(t, 9, 7, 3, mixed, 1, testChunk{"PLTE", testPalette(257)})), false},
		{"bad CRC", badCRC, false},
		{"trailing garbage", append(bytes.Clone(good), "junk"...), false},
		{"missing IEND", good[:len(good)-12], false},
		{"truncated", good[:len(good)/2], false},
		{"IDAT split by a chunk", pngFile(ihdr(9, 2, 8, 2, 0), testChunk{"IDAT", stream[:5]},
			testChunk{"tEXt", []byte("x")}, testChunk{"IDAT", stream[5:]}, iend), false},
		{"too little pixel data", withIDAT(zlibBytes(t, rows[:len(rows)-1], 6)), false},
		{"too much pixel data", withIDAT(zlibBytes(t, append(bytes.Clone(rows), 0), 6)), false},
		{"bytes after the zlib stream", withIDAT(append(bytes.Clone(stream), 0)), false},
		{"bad filter type", withIDAT(zlibBytes(t, append([]byte{5}, rows[1:]...), 6)), false},
		{"bad zlib checksum", withIDAT(append(bytes.Clone(stream[:len(stream)-1]), stream[len(stream)-1]^1)), false},
		{"no IDAT", pngFile(ihdr(9, 2, 8, 2, 0), iend), false},
		{"zero width", pngFile(ihdr(0, 2, 8, 2, 0), testChunk{"IDAT", stream}, iend), false},
		{"huge", pngFile(ihdr(1<<31-1, 1<<31-1, 8, 2, 0), testChunk{"IDAT", stream}, iend), false},
		{"IEND with data", pngFile(ihdr(9, 2, 8, 2, 0), testChunk{"IDAT", stream}, testChunk{"IEND", []byte{0}}), false},
		{"two IHDR", pngFile(ihdr(9, 2, 8, 2, 0), ihdr(9, 2, 8, 2, 0), testChunk{"IDAT", stream}, iend), false},
		{"chunk before IHDR", pngFile(testChunk{"tEXt", []byte("x")}, ihdr(9, 2, 8, 2, 0), testChunk{"IDAT", stream}, iend), false},
		{"not a PNG", []byte("hello"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkFastPNG(t, tc.data, pngTestLimits, tc.fast)
		})
	}
}

func must(data, _ []byte) []byte { return data }

func TestDecodePNGFastLimits(t *testing.T) {
	data, _ := handMade(t, 40, 30, 0, func(int) byte { return 1 }, 1)
	for _, lim := range []Limits{{MaxPixels: 1199, MaxSide: 100}, {MaxPixels: 1 << 20, MaxSide: 39}} {
		if _, ok := decodePNGFast(data, lim); ok {
			t.Fatalf("fast path decoded a 40x30 image over %+v", lim)
		}
		if _, err := Decode(data, lim); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Decode over %+v: got %v, want ErrTooLarge", lim, err)
		}
	}
	checkFastPNG(t, data, Limits{MaxPixels: 1200, MaxSide: 40}, true)
}

// TestDecodePNGFastAllocs holds the point of the fast path: a small PNG costs a few
// allocations (the Image, zlib's Adler-32 digest), not a fresh 32 KB flate window.
func TestDecodePNGFastAllocs(t *testing.T) {
	data := encodePNG(t, image.NewGray(image.Rect(0, 0, 28, 28)))
	Decode(data, DefaultLimits) // fill the pool
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Decode(data, DefaultLimits); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 4 {
		t.Fatalf("%v allocations a decode, want at most 4", allocs)
	}
}

// repairPNG returns a copy of data with the zlib checksum of its IDAT stream and every
// chunk's CRC made right, so that the fuzzer's changes reach the pixel decoding instead
// of all failing a checksum. Data it cannot parse comes back unchanged.
func repairPNG(data []byte) []byte {
	data = bytes.Clone(data)
	type span struct{ start, end int }
	var chunks, idatSpans []span
	for pos := len(pngSignature); len(data)-pos >= 12; {
		n := binary.BigEndian.Uint32(data[pos:])
		if uint64(n) > uint64(len(data)-pos-12) {
			break
		}
		end := pos + 8 + int(n)
		chunks = append(chunks, span{pos + 4, end})
		if string(data[pos+4:pos+8]) == "IDAT" {
			idatSpans = append(idatSpans, span{pos + 8, end})
		}
		pos = end + 4
	}
	var stream []byte
	for _, s := range idatSpans {
		stream = append(stream, data[s.start:s.end]...)
	}
	if len(stream) > 2 {
		r := bytes.NewReader(stream[2:])
		sum := adler32.New()
		_, err := io.Copy(sum, io.LimitReader(flate.NewReader(r), 1<<24))
		if at := len(stream) - r.Len(); err == nil && at+4 <= len(stream) {
			binary.BigEndian.PutUint32(stream[at:], sum.Sum32())
			for _, s := range idatSpans {
				stream = stream[copy(data[s.start:s.end], stream):]
			}
		}
	}
	for _, c := range chunks {
		binary.BigEndian.PutUint32(data[c.end:], crc32.ChecksumIEEE(data[c.start:c.end]))
	}
	return data
}

// scanlinesPNG wraps fuzz bytes in a valid PNG, so that the fuzzer's changes reach
// unfiltering and pixel conversion. data[0] picks the colour type (mod 5) and the zlib
// level, data[1] the width (1 to 40), data[2] the palette's length and the number of
// IDAT chunks; the rest are scanlines, each led by its filter byte (taken mod 5), and
// as many whole ones as there are make the height. It returns nil when there is not
// one whole scanline.
func scanlinesPNG(t testing.TB, data []byte) []byte {
	if len(data) < 3 {
		return nil
	}
	ct := []byte{0, 2, 3, 4, 6}[data[0]%5]
	level := []int{zlib.NoCompression, zlib.BestSpeed, zlib.DefaultCompression}[data[0]/5%3]
	w := 1 + int(data[1])%40
	rowLen := 1 + w*map[byte]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ct]
	h := len(data[3:]) / rowLen
	if h == 0 {
		return nil
	}
	rows := bytes.Clone(data[3 : 3+h*rowLen])
	for y := 0; y < h; y++ {
		rows[y*rowLen] %= 5
	}
	chunks := []testChunk{ihdr(w, h, 8, ct, 0)}
	if ct == 3 {
		chunks = append(chunks, testChunk{"PLTE", testPalette(1 + int(data[2]))})
	}
	chunks = append(chunks, idats(zlibBytes(t, rows, level), 1+int(data[2])%3)...)
	return pngFile(append(chunks, iend)...)
}

// FuzzPNG: whatever the input, an image the fast path decodes must decode with
// image/png too, to the same pixels. mode%3 says what data is: 0 a file, 1 a file whose
// checksums (the chunks' CRCs, zlib's Adler-32) are to be fixed first so that changes
// get past them, 2 scanlines for scanlinesPNG to wrap in a valid file.
func FuzzPNG(f *testing.F) {
	const asIs, repaired, scanlines = 0, 1, 2
	mixed := func(y int) byte { return byte(y % 5) }
	for _, ct := range []byte{0, 2, 4, 6} {
		data, _ := handMade(f, 5, 5, ct, mixed, 2)
		f.Add(data, uint8(asIs))
		f.Add(data, uint8(repaired))
	}
	pal, _ := handMade(f, 6, 4, 3, mixed, 1, testChunk{"PLTE", testPalette(100)})
	f.Add(pal, uint8(repaired))
	for name, tc := range testImages(4, 3) {
		if name == "gray16" || tc.fast {
			for _, level := range []png.CompressionLevel{png.NoCompression, png.DefaultCompression} {
				var buf bytes.Buffer
				(&png.Encoder{CompressionLevel: level}).Encode(&buf, tc.img)
				f.Add(buf.Bytes(), uint8(repaired))
			}
		}
	}
	for i := byte(0); i < 15; i++ {
		rng := rand.New(rand.NewPCG(uint64(i), 2))
		data := []byte{i, 6, 150}
		for j := 0; j < 100; j++ {
			data = append(data, uint8(rng.IntN(256)))
		}
		f.Add(data, uint8(scanlines))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		switch mode % 3 {
		case repaired:
			data = repairPNG(data)
		case scanlines:
			if data = scanlinesPNG(t, data); data == nil {
				return
			}
		}
		fast, ok := decodePNGFast(data, fuzzLimits)
		if !ok {
			return
		}
		std, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("fast path decoded what image/png refuses: %v", err)
		}
		if want := FromImage(std); !sameImage(fast, want) {
			t.Fatalf("fast path gave %s, image/png %s", describe(fast), describe(want))
		}
		if slow, err := decode(data, fuzzLimits, false); err != nil || !sameImage(fast, slow) {
			t.Fatalf("the standard path gave %s, %v", describe(slow), err)
		}
	})
}

// BenchmarkDecodePNG compares the fast path (Decode) with the standard path
// (image.DecodeConfig, png.Decode, FromImage) on a Fashion-MNIST-sized grey image and
// a VGA RGB one.
func BenchmarkDecodePNG(b *testing.B) {
	px := noisyPattern(640, 480, 1)
	rgb := image.NewRGBA(image.Rect(0, 0, 640, 480))
	for y := 0; y < 480; y++ {
		for x := 0; x < 640; x++ {
			r, g, bl, _ := px(x, y)
			rgb.SetRGBA(x, y, color.RGBA{r, g, bl, 255})
		}
	}
	grey := image.NewGray(image.Rect(0, 0, 28, 28))
	for i := range grey.Pix {
		grey.Pix[i] = uint8(i * 7 % 251)
	}
	for _, tc := range []struct {
		name string
		img  image.Image
	}{{"28x28-grey", grey}, {"640x480-rgb", rgb}} {
		data := encodePNG(b, tc.img)
		for _, path := range []struct {
			name string
			fast bool
		}{{"fast", true}, {"standard", false}} {
			b.Run(tc.name+"/"+path.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					if _, err := decode(data, DefaultLimits, path.fast); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
