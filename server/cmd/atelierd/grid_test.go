package main

import (
	"image"
	"image/color"
	"image/draw"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/atelier-vision/atelier/internal/imageio"
)

// labelledGrid lays out rows of grey designs, each row's label on its left, enlarged
// scale times, on white: the picture docs/images/generated_grid.png shows.
func labelledGrid(labels []string, rows [][]imageio.Image, scale int) *image.RGBA {
	const gap, margin, labelWidth = 4, 10, 110
	cell := 0
	cols := 0
	for _, row := range rows {
		cols = max(cols, len(row))
		for _, im := range row {
			cell = max(cell, im.Width*scale, im.Height*scale)
		}
	}
	w := 2*margin + labelWidth + cols*(cell+gap)
	h := 2*margin + len(rows)*(cell+gap)
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(out, out.Bounds(), image.White, image.Point{}, draw.Src)
	face := basicfont.Face7x13
	for r, row := range rows {
		y0 := margin + r*(cell+gap)
		d := font.Drawer{Dst: out, Src: image.NewUniform(color.Gray{Y: 30}), Face: face,
			Dot: fixed.P(margin, y0+cell/2+face.Metrics().Ascent.Ceil()/2)}
		d.DrawString(labels[r])
		for c, im := range row {
			x0 := margin + labelWidth + c*(cell+gap)
			for y := range im.Height * scale {
				for x := range im.Width * scale {
					v := im.Pix[((y/scale)*im.Width+x/scale)*im.Channels]
					out.Set(x0+x, y0+y, color.Gray{Y: v})
				}
			}
		}
	}
	return out
}
