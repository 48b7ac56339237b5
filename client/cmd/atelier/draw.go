package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/jpeg" // decode JPEG inputs
	"image/png"
	"io"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/atelier-vision/atelier/client/palette"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// garmentColors gives each coarse garment type its own box colour (the palette the
// dashboard shares); others get palette.Other.
var garmentColors = palette.ByType

// minDrawSide is the size small images are enlarged to (by a whole factor, nearest
// neighbour) so that labels stay readable on a 28-pixel Fashion-MNIST scene.
const minDrawSide = 320

// drawDetections writes the input image with every detection's box and label to a
// PNG file.
func drawDetections(raw []byte, resp *pb.DetectResponse, path string) error {
	src, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("decoding the input locally: %w", err)
	}
	out := annotate(src, resp.GetDetections())
	return writeFile(path, 0o666, func(w io.Writer) error { return png.Encode(w, out) })
}

// annotate returns a copy of src, enlarged if small, with the detections drawn on it.
func annotate(src image.Image, dets []*pb.Detection) *image.RGBA {
	b := src.Bounds()
	scale := max(1, minDrawSide/max(b.Dx(), b.Dy()))
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx()*scale, b.Dy()*scale))
	for y := range dst.Bounds().Dy() {
		for x := range dst.Bounds().Dx() {
			dst.Set(x, y, src.At(b.Min.X+x/scale, b.Min.Y+y/scale))
		}
	}
	for _, d := range dets {
		c := palette.Of(d.GarmentType)
		bx := d.GetBox()
		r := image.Rect(int(bx.GetXMin()*float32(scale)), int(bx.GetYMin()*float32(scale)),
			int(bx.GetXMax()*float32(scale)), int(bx.GetYMax()*float32(scale))).Intersect(dst.Bounds())
		strokeRect(dst, r, 2, c)
		label := fmt.Sprintf("%s %.2f", d.GarmentType, d.Score)
		if p := d.GetClassification().GetPredictions(); len(p) > 0 {
			label += " " + p[0].Label
		}
		drawLabel(dst, r.Min, label, c)
	}
	return dst
}

// strokeRect draws r's outline, width pixels wide, inside r.
func strokeRect(dst *image.RGBA, r image.Rectangle, width int, c color.RGBA) {
	u := image.NewUniform(c)
	for _, edge := range []image.Rectangle{
		{r.Min, image.Pt(r.Max.X, r.Min.Y+width)},
		{image.Pt(r.Min.X, r.Max.Y-width), r.Max},
		{r.Min, image.Pt(r.Min.X+width, r.Max.Y)},
		{image.Pt(r.Max.X-width, r.Min.Y), r.Max},
	} {
		draw.Draw(dst, edge.Intersect(r), u, image.Point{}, draw.Src)
	}
}

// drawLabel writes text on a band of colour c (white text on dark colours, black on
// light ones), just above at (or, at the top edge, just inside).
func drawLabel(dst *image.RGBA, at image.Point, text string, c color.RGBA) {
	face := basicfont.Face7x13
	w := font.MeasureString(face, text).Ceil() + 4
	h := face.Metrics().Height.Ceil() + 2
	top := at.Y - h
	if top < 0 {
		top = at.Y
	}
	if over := at.X + w - dst.Bounds().Max.X; over > 0 { // keep the label on the image
		at.X = max(0, at.X-over)
	}
	bg := image.Rect(at.X, top, at.X+w, top+h).Intersect(dst.Bounds())
	draw.Draw(dst, bg, image.NewUniform(c), image.Point{}, draw.Src)
	ink := image.White
	if palette.Light(c) {
		ink = image.Black
	}
	d := font.Drawer{Dst: dst, Src: ink, Face: face,
		Dot: fixed.P(at.X+2, top+face.Metrics().Ascent.Ceil()+1)}
	d.DrawString(text)
}
