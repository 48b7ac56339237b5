package imageio

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"io"
	"math"
	"strconv"
	"sync"
)

// pngSignature is the eight bytes every PNG file starts with.
const pngSignature = "\x89PNG\r\n\x1a\n"

// PNG colour types (PNG spec section 11.2.2).
const (
	pngGrey      = 0
	pngRGB       = 2
	pngPalette   = 3
	pngGreyAlpha = 4
	pngRGBA      = 6
)

// pngFormat is how a colour type lays out a pixel: bytes per pixel in the scanline, and
// channels in the Image that FromImage makes of image/png's result.
type pngFormat struct {
	bpp, channels int
}

// pngFormats lists, by colour type, the ones the fast path decodes, all at bit depth 8;
// the zero entries are not decoded. Grey with alpha comes out with 3 channels because
// image/png returns it as *image.NRGBA, which FromImage turns into RGB.
var pngFormats = [pngRGBA + 1]pngFormat{
	pngGrey:      {bpp: 1, channels: 1},
	pngRGB:       {bpp: 3, channels: 3},
	pngPalette:   {bpp: 1, channels: 3},
	pngGreyAlpha: {bpp: 2, channels: 3},
	pngRGBA:      {bpp: 4, channels: 3},
}

// pngState is what one decode reuses from the last: the zlib reader (its flate window
// is 32 KB) and two scanline buffers.
type pngState struct {
	idat idatReader
	// zr is nil until the first successful use: zlib.NewReader needs a valid stream.
	zr        io.ReadCloser
	cur, prev []byte
	palette   [256 * 3]byte
	one       [1]byte
}

var pngStates = sync.Pool{New: func() any { return new(pngState) }}

// decodePNGFast decodes the common PNGs (8-bit, non-interlaced grey, RGB, grey+alpha,
// RGBA or palette, without tRNS) straight into an Image, reusing its zlib reader and
// row buffers across calls: image/png allocates a fresh 32 KB flate window, a bufio
// reader and an intermediate image per call, and that garbage dominated the server's
// allocations. ok is false for anything else, on any doubt, and for an image over lim;
// the caller then decodes with image/png, which also words the errors. When ok is true
// the Image is byte-for-byte what FromImage(png.Decode(data)) gives.
func decodePNGFast(data []byte, lim Limits) (img Image, ok bool) {
	info, ok := scanPNG(data)
	if !ok || lim.check(info.width, info.height) != nil {
		return Image{}, false
	}
	f := pngFormats[info.colorType]
	rowBytes, pixBytes, ok := pngSizes(info.width, info.height, f)
	if !ok {
		return Image{}, false
	}
	img = Image{Width: info.width, Height: info.height, Channels: f.channels, Pix: make([]uint8, pixBytes)}
	st := pngStates.Get().(*pngState)
	ok = st.inflate(data, info, f, rowBytes, img.Pix)
	// Not deferred: a state whose decode panicked is dropped rather than reused.
	st.idat = idatReader{} // the pool must not keep the request's bytes alive
	pngStates.Put(st)
	if !ok {
		return Image{}, false
	}
	return img, true
}

// pngInfo is what the chunks around the pixel data say.
type pngInfo struct {
	width, height int
	colorType     byte
	palette       []byte // the PLTE chunk's data (3 bytes an entry), for colour type 3
	idat          int    // offset of the first IDAT chunk (its length field)
}

// scanPNG walks every chunk, checking its CRC and that the file is one the fast path
// decodes: IHDR first, an optional PLTE, one run of IDAT chunks, IEND at the very end,
// and only ancillary chunks otherwise (never tRNS, which adds transparency).
func scanPNG(data []byte) (info pngInfo, ok bool) {
	if !bytes.HasPrefix(data, []byte(pngSignature)) {
		return pngInfo{}, false
	}
	const (
		beforeIDAT = iota
		inIDAT
		afterIDAT
	)
	idatStage, seenPLTE := beforeIDAT, false
	pos := len(pngSignature)
	for first := true; ; first = false {
		typ, body, next, ok := pngChunk(data, pos)
		if !ok || first != (string(typ) == "IHDR") {
			return pngInfo{}, false
		}
		if idatStage == inIDAT && string(typ) != "IDAT" {
			idatStage = afterIDAT
		}
		switch string(typ) {
		case "IHDR":
			if info, ok = parseIHDR(body); !ok {
				return pngInfo{}, false
			}
		case "PLTE":
			// image/png wants PLTE once, before IDAT, and refuses it in grey images.
			ct := info.colorType
			if seenPLTE || idatStage != beforeIDAT || ct == pngGrey || ct == pngGreyAlpha ||
				len(body) == 0 || len(body)%3 != 0 || len(body) > 256*3 {
				return pngInfo{}, false
			}
			seenPLTE = true
			if ct == pngPalette {
				info.palette = body
			}
		case "IDAT":
			switch {
			case idatStage == afterIDAT, info.colorType == pngPalette && !seenPLTE:
				return pngInfo{}, false
			case idatStage == beforeIDAT:
				idatStage, info.idat = inIDAT, pos
			}
		case "IEND":
			// Trailing bytes are harmless to image/png, but rare enough to leave to it.
			return info, idatStage != beforeIDAT && len(body) == 0 && next == len(data)
		default:
			// Bit 5 of the first letter clear marks a critical chunk, which the fast
			// path does not know; tRNS is ancillary but changes the pixels.
			if typ[0]&0x20 == 0 || string(typ) == "tRNS" {
				return pngInfo{}, false
			}
		}
		pos = next
	}
}

// pngChunk returns the type and data of the chunk at data[pos:] and the offset after
// it, or ok false when the chunk is cut short, too long for image/png, or fails its CRC.
func pngChunk(data []byte, pos int) (typ, body []byte, next int, ok bool) {
	if pos < 0 || len(data)-pos < 12 {
		return nil, nil, 0, false
	}
	n := binary.BigEndian.Uint32(data[pos:])
	if n > math.MaxInt32 || uint64(n) > uint64(len(data)-pos-12) {
		return nil, nil, 0, false
	}
	end := pos + 8 + int(n)
	if crc32.ChecksumIEEE(data[pos+4:end]) != binary.BigEndian.Uint32(data[end:]) {
		return nil, nil, 0, false
	}
	return data[pos+4 : pos+8], data[pos+8 : end], end + 4, true
}

// parseIHDR accepts only what the fast path decodes: bit depth 8, a colour type in
// pngFormats, no interlacing, and the standard compression and filter methods.
func parseIHDR(b []byte) (pngInfo, bool) {
	if len(b) != 13 {
		return pngInfo{}, false
	}
	w, h := binary.BigEndian.Uint32(b[0:4]), binary.BigEndian.Uint32(b[4:8])
	depth, ct, compression, filter, interlace := b[8], b[9], b[10], b[11], b[12]
	if int(ct) >= len(pngFormats) || pngFormats[ct].bpp == 0 || depth != 8 || compression != 0 || filter != 0 || interlace != 0 {
		return pngInfo{}, false
	}
	// image/png reads the sides as int32 and refuses non-positive ones.
	if w == 0 || h == 0 || w > math.MaxInt32 || h > math.MaxInt32 {
		return pngInfo{}, false
	}
	return pngInfo{width: int(w), height: int(h), colorType: ct}, true
}

// pngSizes returns a scanline's length (without its filter byte) and the Image's pixel
// bytes, or ok false when either, or image/png's own 8*width*height, overflows an int.
func pngSizes(w, h int, f pngFormat) (rowBytes, pixBytes int, ok bool) {
	pixels := uint64(w) * uint64(h) // both below 2^31, so this cannot wrap
	if uint64(w)*uint64(f.bpp)+1 > math.MaxInt || pixels > math.MaxInt/8 {
		return 0, 0, false
	}
	return w * f.bpp, int(pixels) * f.channels, true
}

// inflate decompresses the IDAT stream into out, one scanline at a time. It wants
// exactly height scanlines, a valid zlib checksum, and every IDAT byte used.
func (st *pngState) inflate(data []byte, info pngInfo, f pngFormat, rowBytes int, out []uint8) bool {
	st.idat = idatReader{data: data, nextChunk: info.idat}
	if st.zr == nil {
		zr, err := zlib.NewReader(&st.idat)
		if err != nil {
			return false
		}
		st.zr = zr
	} else if st.zr.(zlib.Resetter).Reset(&st.idat, nil) != nil {
		return false
	}
	st.cur, st.prev = resize(st.cur, 1+rowBytes), resize(st.prev, 1+rowBytes)
	clear(st.prev) // the row above the first is all zeros
	if info.colorType == pngPalette {
		// Indexes past the palette's end are opaque black in image/png.
		clear(st.palette[copy(st.palette[:], info.palette):])
	}
	outRow := info.width * f.channels
	for y := 0; y < info.height; y++ {
		if _, err := io.ReadFull(st.zr, st.cur); err != nil {
			return false
		}
		if !unfilter(st.cur[0], st.cur[1:], st.prev[1:], f.bpp) {
			return false
		}
		convertRow(out[y*outRow:(y+1)*outRow], st.cur[1:], info.colorType, &st.palette)
		st.cur, st.prev = st.prev, st.cur
	}
	return st.atEnd()
}

// atEnd reports whether the zlib stream ends right after the pixels, as image/png
// requires (the next read must give io.EOF, after zlib checked its Adler-32), and
// whether the stream used every IDAT byte (image/png may not mind spare bytes, but
// the fast path leaves that judgement to it).
func (st *pngState) atEnd() bool {
	n, err := 0, error(nil)
	// io.Reader allows (0, nil); image/png retries up to 100 times, as here.
	for i := 0; i < 100 && n == 0 && err == nil; i++ {
		n, err = st.zr.Read(st.one[:])
	}
	return n == 0 && err == io.EOF && st.idat.exhausted()
}

// resize returns b with length n, reusing its array when it is big enough.
func resize(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// unfilter undoes the scanline's filter in place (PNG spec section 9), with the same
// arithmetic as image/png. It reports false for an unknown filter type.
func unfilter(filter byte, cdat, pdat []byte, bpp int) bool {
	switch filter {
	case 0: // None
	case 1: // Sub
		for i := bpp; i < len(cdat); i++ {
			cdat[i] += cdat[i-bpp]
		}
	case 2: // Up
		for i, p := range pdat {
			cdat[i] += p
		}
	case 3: // Average
		for i := 0; i < bpp; i++ {
			cdat[i] += pdat[i] / 2
		}
		for i := bpp; i < len(cdat); i++ {
			cdat[i] += uint8((int(cdat[i-bpp]) + int(pdat[i])) / 2)
		}
	case 4: // Paeth
		unpaeth(cdat, pdat, bpp)
	default:
		return false
	}
	return true
}

// unpaeth undoes the Paeth filter: each byte was predicted by whichever of left (a),
// above (b) and upper-left (c) is nearest to a+b-c, preferring a, then b, on ties
// (PNG spec section 9.4). It walks one channel at a time to keep a and c in registers,
// as image/png does; this loop is the hot one for filtered photos.
func unpaeth(cdat, pdat []byte, bpp int) {
	for ch := 0; ch < bpp; ch++ {
		a, c := 0, 0 // left and upper-left are zero before the first pixel
		for i := ch; i < len(cdat); i += bpp {
			b := int(pdat[i])
			pa, pb, pc := absInt(b-c), absInt(a-c), absInt(a+b-2*c)
			switch {
			case pa <= pb && pa <= pc: // a it is
			case pb <= pc:
				a = b
			default:
				a = c
			}
			a = (a + int(cdat[i])) & 0xff
			cdat[i] = uint8(a)
			c = b
		}
	}
}

// absInt is |x| without a branch, which the unpredictable Paeth choices would mispredict.
func absInt(x int) int {
	m := x >> (strconv.IntSize - 1)
	return (x ^ m) - m
}

// convertRow writes one unfiltered scanline as Image pixels, the way FromImage
// converts what image/png returns for the colour type.
func convertRow(dst, src []byte, colorType byte, palette *[256 * 3]byte) {
	switch colorType {
	case pngGrey, pngRGB:
		copy(dst, src)
	case pngPalette:
		for x, idx := range src {
			p := palette[3*int(idx) : 3*int(idx)+3]
			dst[3*x], dst[3*x+1], dst[3*x+2] = p[0], p[1], p[2]
		}
	case pngGreyAlpha:
		for x := 0; x < len(src)/2; x++ {
			v := premultiply(src[2*x], src[2*x+1])
			dst[3*x], dst[3*x+1], dst[3*x+2] = v, v, v
		}
	case pngRGBA:
		for x := 0; x < len(src)/4; x++ {
			a := src[4*x+3]
			dst[3*x] = premultiply(src[4*x], a)
			dst[3*x+1] = premultiply(src[4*x+1], a)
			dst[3*x+2] = premultiply(src[4*x+2], a)
		}
	}
}

// premultiply scales a colour value by its alpha exactly as image/draw does when
// FromImage draws image/png's *image.NRGBA onto an *image.RGBA.
func premultiply(c, a uint8) uint8 {
	sa := uint32(a) * 0x101
	return uint8(uint32(c) * sa / 0xff >> 8)
}

// idatReader presents the data of a run of consecutive IDAT chunks as one stream. It is
// an io.ByteReader so that flate reads it directly rather than through a new
// bufio.Reader, and so never reads past the end of the zlib stream.
type idatReader struct {
	data      []byte
	pos, end  int // data[pos:end] is the unread rest of the current chunk's data
	nextChunk int // offset of the chunk after the current one
}

// advance moves to the next chunk if it is an IDAT. scanPNG checked the chunks' lengths
// and CRCs; the bounds are checked again so a mistake cannot read out of range.
func (r *idatReader) advance() bool {
	h := r.nextChunk
	if h < 0 || len(r.data)-h < 12 || string(r.data[h+4:h+8]) != "IDAT" {
		return false
	}
	n := binary.BigEndian.Uint32(r.data[h:])
	if uint64(n) > uint64(len(r.data)-h-12) {
		return false
	}
	r.pos, r.end = h+8, h+8+int(n)
	r.nextChunk = r.end + 4
	return true
}

func (r *idatReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for r.pos == r.end {
		if !r.advance() {
			return 0, io.EOF
		}
	}
	n := copy(p, r.data[r.pos:r.end])
	r.pos += n
	return n, nil
}

func (r *idatReader) ReadByte() (byte, error) {
	for r.pos == r.end {
		if !r.advance() {
			return 0, io.EOF
		}
	}
	r.pos++
	return r.data[r.pos-1], nil
}

// exhausted reports whether no IDAT data is left unread, skipping empty IDAT chunks.
func (r *idatReader) exhausted() bool {
	for r.pos == r.end {
		if !r.advance() {
			return true
		}
	}
	return false
}
