package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
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
	return writeFile(path, 0o666, func(w io.Writer) error { return png.Encode(w, sheet) })
}

// writeFile creates path (with perm, before the umask) and fills it with write. When
// that fails (a full disk), a regular file is removed rather than left behind cut
// short, for a script to take as done; /dev/stdout and the like are left alone.
func writeFile(path string, perm os.FileMode, write func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if fi, serr := os.Stat(path); serr == nil && fi.Mode().IsRegular() {
			os.Remove(path)
		}
	}
	return err
}

// maxSheetPixels bounds a grid sheet (256 MiB of RGBA), and so every design on it:
// a PNG's header may claim any size, and a 1 MB PNG of 30000x30000 blank pixels from
// a broken server would otherwise take gigabytes to decode and tile.
const maxSheetPixels = 1 << 26

// grid tiles the images on a white sheet; cells are as big as the largest image,
// times the whole factor that makes them at least minSide pixels.
func grid(pngs [][]byte, columns, minSide int) (*image.RGBA, error) {
	if len(pngs) == 0 {
		return nil, fmt.Errorf("no image to tile")
	}
	cw, ch := 0, 0
	for i, b := range pngs { // the sizes first, from the headers: nothing decoded yet
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		if cfg.Width > maxSheetPixels || cfg.Height > maxSheetPixels {
			return nil, fmt.Errorf("image %d is %dx%d pixels, too large for a sheet", i, cfg.Width, cfg.Height)
		}
		cw, ch = max(cw, cfg.Width), max(ch, cfg.Height)
	}
	scale := max(1, minSide/max(cw, ch, 1))
	cw, ch = cw*scale, ch*scale
	if columns <= 0 {
		columns = int(math.Ceil(math.Sqrt(float64(len(pngs)))))
	}
	columns = min(columns, len(pngs))
	rows := (len(pngs) + columns - 1) / columns
	w, h := columns*(cw+gridGap)+gridGap, rows*(ch+gridGap)+gridGap
	if int64(w)*int64(h) > maxSheetPixels {
		return nil, fmt.Errorf("the sheet would be %dx%d pixels, over the limit of %d (designs up to %dx%d)", w, h, maxSheetPixels, cw/scale, ch/scale)
	}
	imgs := make([]image.Image, len(pngs))
	for i, b := range pngs {
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		imgs[i] = img
	}
	sheet := image.NewRGBA(image.Rect(0, 0, w, h))
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
