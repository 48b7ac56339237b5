package imageio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"image/png"
)

// Decode decodes a JPEG or PNG file. It reads the header first and refuses an image
// over lim before decoding pixels. Grey images come back with 1 channel, all others
// with 3 (alpha is dropped). Common PNGs take a fast path that allocates little (see
// decodePNGFast); the result is the same either way.
func Decode(data []byte, lim Limits) (Image, error) {
	return decode(data, lim, true)
}

// decode is Decode with the PNG fast path optional, so that tests and benchmarks can
// hold it against the standard decoders.
func decode(data []byte, lim Limits, fastPNG bool) (img Image, err error) {
	if len(data) == 0 {
		return Image{}, fmt.Errorf("%w: no bytes (send a JPEG or PNG file, or a raw RGB frame)", ErrInvalidImage)
	}
	format := "image" // for the message below; DecodeConfig names it
	defer func() {
		// Neither the standard decoders nor the fast path panic on bad input, but a
		// decoder bug must not take the server down with it.
		if r := recover(); r != nil {
			img, err = Image{}, fmt.Errorf("%w: %s decoder failed: %v", ErrInvalidImage, format, r)
		}
	}()
	if sniff(data) == "PNG" {
		format = "png"
		if err := pngCanHold(data, lim); err != nil {
			return Image{}, err
		}
	}
	if fastPNG && format == "png" {
		if im, ok := decodePNGFast(data, lim); ok {
			return im, nil
		}
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		if kind := sniff(data); kind != "" {
			return Image{}, fmt.Errorf("%w: corrupt or truncated %s header (%v)", ErrInvalidImage, kind, err)
		}
		return Image{}, fmt.Errorf("%w: not a readable JPEG or PNG file (%v)", ErrInvalidImage, err)
	}
	if err := lim.check(cfg.Width, cfg.Height); err != nil {
		return Image{}, err
	}
	if format == "jpeg" {
		if err := jpegCanHold(len(data), cfg.Width, cfg.Height); err != nil {
			return Image{}, err
		}
	}
	var decoded image.Image
	switch format {
	case "jpeg":
		decoded, err = jpeg.Decode(bytes.NewReader(data))
	case "png":
		decoded, err = png.Decode(bytes.NewReader(data))
	default:
		return Image{}, fmt.Errorf("%w: format %q is not supported (send JPEG or PNG)", ErrInvalidImage, format)
	}
	if err != nil {
		return Image{}, fmt.Errorf("%w: corrupt or truncated %s data (%v)", ErrInvalidImage, format, err)
	}
	return FromImage(decoded), nil
}

// maxDeflateRatio is the most deflate can shrink data: a run of 258 bytes costs at
// least two bits, so no stream grows back to more than 1032 times its size.
const maxDeflateRatio = 1032

// pngCanHold refuses a PNG too short to hold the image its header declares: the
// decoders allocate the whole image before they find the data missing, so a 75-byte
// file saying 8192x6000 cost 94 MB (twice, as the fast path and then image/png tried
// it), and 64 of them in one request 6 GB. The bound is deflate's: the pixel bytes
// (at the header's bit depth and channels, filter bytes not counted) over 1032.
func pngCanHold(data []byte, lim Limits) error {
	if len(data) < 8+8+13 || string(data[12:16]) != "IHDR" {
		return nil // image.DecodeConfig words what is wrong
	}
	w, h := int64(binary.BigEndian.Uint32(data[16:])), int64(binary.BigEndian.Uint32(data[20:]))
	depth, channels := int64(data[24]), int64(0)
	switch data[25] { // colour type
	case 0, 3: // grey, palette
		channels = 1
	case 2:
		channels = 3
	case 4:
		channels = 2
	case 6:
		channels = 4
	}
	if w > 1<<31 || h > 1<<31 || depth > 16 || lim.check(int(w), int(h)) != nil {
		return nil // over the limits, which say so in their own words
	}
	if pixels := h * (w * depth * channels / 8); pixels/maxDeflateRatio > int64(len(data)) {
		return fmt.Errorf("%w: corrupt or truncated png data: %d bytes cannot hold the %dx%d image its header declares",
			ErrInvalidImage, len(data), w, h)
	}
	return nil
}

// jpegCanHold refuses a JPEG too short to hold the image its header declares:
// image/jpeg allocates the whole image (and, for a progressive file, its coefficients)
// at the first scan, before it finds the data missing, so 64 small files saying
// 8192x6000 cost one request 3 GB. The bound: every 8x8 block of the full-resolution
// component needs at least one bit (its DC Huffman code, at least one bit long, in the
// baseline scan or the progressive DC scan), so a file has at least a byte for every
// eight such blocks. The best real encoders stay well above it (a flat grey 8192x6000
// picture optimised by libjpeg takes two bits a block).
func jpegCanHold(size, w, h int) error {
	blocks := int64((w+7)/8) * int64((h+7)/8)
	if blocks/8 > int64(size) {
		return fmt.Errorf("%w: corrupt or truncated jpeg data: %d bytes cannot hold the %dx%d image its header declares",
			ErrInvalidImage, size, w, h)
	}
	return nil
}

// sniff names the format the data's first bytes announce, or "" when they announce none.
func sniff(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte{0xff, 0xd8}):
		return "JPEG"
	case bytes.HasPrefix(data, []byte("\x89PNG")):
		return "PNG"
	}
	return ""
}

// FromImage converts a Go image to an Image: grey stays 1 channel, the rest become RGB.
func FromImage(src image.Image) Image {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	if g, ok := src.(*image.Gray); ok {
		out := Image{Width: w, Height: h, Channels: 1, Pix: make([]uint8, w*h)}
		for y := 0; y < h; y++ {
			copy(out.Pix[y*w:(y+1)*w], g.Pix[(y+b.Min.Y-g.Rect.Min.Y)*g.Stride+(b.Min.X-g.Rect.Min.X):])
		}
		return out
	}
	rgba, ok := src.(*image.RGBA)
	if !ok || rgba.Rect.Min != (image.Point{}) {
		rgba = image.NewRGBA(image.Rect(0, 0, w, h))
		draw.Draw(rgba, rgba.Rect, src, b.Min, draw.Src)
	}
	out := Image{Width: w, Height: h, Channels: 3, Pix: make([]uint8, w*h*3)}
	for y := 0; y < h; y++ {
		row := rgba.Pix[y*rgba.Stride:]
		for x := 0; x < w; x++ {
			i := (y*w + x) * 3
			out.Pix[i], out.Pix[i+1], out.Pix[i+2] = row[4*x], row[4*x+1], row[4*x+2]
		}
	}
	return out
}

// ToGo returns the image as a Go image (*image.Gray or *image.RGBA).
func (im Image) ToGo() image.Image {
	r := image.Rect(0, 0, im.Width, im.Height)
	if im.Channels == 1 {
		return &image.Gray{Pix: im.Pix, Stride: im.Width, Rect: r}
	}
	out := image.NewRGBA(r)
	for i := 0; i < im.Width*im.Height; i++ {
		out.Pix[4*i], out.Pix[4*i+1], out.Pix[4*i+2], out.Pix[4*i+3] = im.Pix[3*i], im.Pix[3*i+1], im.Pix[3*i+2], 255
	}
	return out
}

// EncodePNG encodes the image as PNG.
func EncodePNG(im Image) ([]byte, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, im.ToGo()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
