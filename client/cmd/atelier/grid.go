package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
)

// gridGap is the white gap between designs on a grid sheet, in pixels.
const gridGap = 2

// minCell is the size small designs are enlarged to (by a whole factor, nearest
// neighbour) on a sheet: a 28-pixel design becomes 112 pixels.
const minCell = 96

// writeGrid tiles PNG images, in order, into one sheet of columns columns (0: as
// square as possible), enlarged to at least minCell pixels, and writes it to path.
func writeGrid(pngs [][]byte, columns int, path string) error {
	sheet, err := grid(pngs, columns, minCell)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, sheet); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// grid tiles the images on a white sheet; cells are as big as the largest image,
// times the whole factor that makes them at least minSide pixels.
func grid(pngs [][]byte, columns, minSide int) (*image.RGBA, error) {
	if len(pngs) == 0 {
		return nil, fmt.Errorf("no image to tile")
	}
	imgs := make([]image.Image, len(pngs))
	cw, ch := 0, 0
	for i, b := range pngs {
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		imgs[i] = img
		cw, ch = max(cw, img.Bounds().Dx()), max(ch, img.Bounds().Dy())
	}
	scale := max(1, minSide/max(cw, ch))
	cw, ch = cw*scale, ch*scale
	if columns <= 0 {
		columns = int(math.Ceil(math.Sqrt(float64(len(imgs)))))
	}
	columns = min(columns, len(imgs))
	rows := (len(imgs) + columns - 1) / columns
	sheet := image.NewRGBA(image.Rect(0, 0, columns*(cw+gridGap)+gridGap, rows*(ch+gridGap)+gridGap))
	draw.Draw(sheet, sheet.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	for i, img := range imgs {
		at := image.Pt(gridGap+(i%columns)*(cw+gridGap), gridGap+(i/columns)*(ch+gridGap))
		b := img.Bounds()
		for y := range b.Dy() * scale {
			for x := range b.Dx() * scale {
				sheet.Set(at.X+x, at.Y+y, img.At(b.Min.X+x/scale, b.Min.Y+y/scale))
			}
		}
	}
	return sheet, nil
}
