package imageio

import "fmt"

// GridRow is one row of a grid: its label, drawn on the left, and its images.
type GridRow struct {
	Label  string
	Images []Image
}

// GridOptions sets a grid's look; zero fields take the defaults.
type GridOptions struct {
	// Scale enlarges every image by nearest neighbour (default 2).
	Scale int
	// Gap is the space between cells, in pixels (default 4).
	Gap int
}

const (
	gridMargin = 10
	gridText   = 30 // grey level of the labels
)

// Grid lays out rows of images, each with its label on the left (drawn with a built-in
// 6x13 pixel font, printable ASCII), on a white background, and returns an RGB image.
// Every cell is as large as the largest image; smaller ones sit at the cell's top left.
// Images may be grey or RGB. Encode the result with EncodePNG.
func Grid(rows []GridRow, opt GridOptions) (Image, error) {
	scale, gap := opt.Scale, opt.Gap
	if scale <= 0 {
		scale = 2
	}
	if gap <= 0 {
		gap = 4
	}
	cellW, cellH, cols, labelChars := 0, 0, 0, 0
	for r, row := range rows {
		cols = max(cols, len(row.Images))
		labelChars = max(labelChars, len([]rune(row.Label)))
		for i, im := range row.Images {
			if (im.Channels != 1 && im.Channels != 3) || len(im.Pix) != im.Width*im.Height*im.Channels {
				return Image{}, fmt.Errorf("%w: grid row %d image %d is not a %dx%d grey or RGB image",
					ErrInvalidImage, r, i, im.Width, im.Height)
			}
			cellW, cellH = max(cellW, im.Width*scale), max(cellH, im.Height*scale)
		}
	}
	if cols == 0 {
		return Image{}, fmt.Errorf("%w: a grid needs at least one image", ErrInvalidImage)
	}
	textScale := max(1, scale/2)
	labelW := 0
	if labelChars > 0 {
		labelW = labelChars*glyphWidth*textScale + gap
	}
	rowH := max(cellH, glyphHeight*textScale)
	out := Image{Channels: 3}
	out.Width = 2*gridMargin + labelW + cols*(cellW+gap) - gap
	out.Height = 2*gridMargin + len(rows)*(rowH+gap) - gap
	out.Pix = make([]uint8, out.Width*out.Height*3)
	for i := range out.Pix {
		out.Pix[i] = 255
	}
	for r, row := range rows {
		top := gridMargin + r*(rowH+gap)
		out.drawText(row.Label, gridMargin, top+(rowH-glyphHeight*textScale)/2, textScale)
		for c, im := range row.Images {
			out.paste(im, gridMargin+labelW+c*(cellW+gap), top, scale)
		}
	}
	return out, nil
}

// paste draws im enlarged scale times with its top left at (x0, y0); out is RGB.
func (out Image) paste(im Image, x0, y0, scale int) {
	for y := 0; y < im.Height*scale; y++ {
		for x := 0; x < im.Width*scale; x++ {
			src := ((y/scale)*im.Width + x/scale) * im.Channels
			dst := ((y0+y)*out.Width + x0 + x) * 3
			if im.Channels == 1 {
				v := im.Pix[src]
				out.Pix[dst], out.Pix[dst+1], out.Pix[dst+2] = v, v, v
			} else {
				copy(out.Pix[dst:dst+3], im.Pix[src:src+3])
			}
		}
	}
}

// drawText writes s with its top left at (x0, y0), each font pixel scale x scale.
func (out Image) drawText(s string, x0, y0, scale int) {
	for i, r := range []rune(s) {
		g := glyph(r)
		for gy, bits := range g {
			for gx := 0; gx < glyphWidth; gx++ {
				if bits&(0x80>>gx) == 0 {
					continue
				}
				for dy := 0; dy < scale; dy++ {
					for dx := 0; dx < scale; dx++ {
						x := x0 + (i*glyphWidth+gx)*scale + dx
						y := y0 + gy*scale + dy
						p := (y*out.Width + x) * 3
						out.Pix[p], out.Pix[p+1], out.Pix[p+2] = gridText, gridText, gridText
					}
				}
			}
		}
	}
}
