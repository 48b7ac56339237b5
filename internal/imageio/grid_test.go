package imageio

import (
	"errors"
	"testing"
)

func solid(w, h, c int, v uint8) Image {
	im := Image{Width: w, Height: h, Channels: c, Pix: make([]uint8, w*h*c)}
	for i := range im.Pix {
		im.Pix[i] = v
	}
	return im
}

func TestGridLayout(t *testing.T) {
	rows := []GridRow{
		{Label: "Dress", Images: []Image{solid(4, 4, 1, 0), solid(4, 4, 1, 100)}},
		{Label: "T-shirt/top", Images: []Image{solid(4, 4, 3, 200)}},
	}
	g, err := Grid(rows, GridOptions{Scale: 2, Gap: 3})
	if err != nil {
		t.Fatal(err)
	}
	labelW := len("T-shirt/top")*glyphWidth + 3
	rowH := glyphHeight // taller than a cell of 8
	wantW, wantH := 2*gridMargin+labelW+2*8+3, 2*gridMargin+2*rowH+3
	if g.Width != wantW || g.Height != wantH || g.Channels != 3 || len(g.Pix) != wantW*wantH*3 {
		t.Fatalf("got %dx%dx%d, want %dx%dx3", g.Width, g.Height, g.Channels, wantW, wantH)
	}
	at := func(x, y int) uint8 { return g.Pix[(y*g.Width+x)*3] }
	cells := []struct {
		name string
		x, y int
		want uint8
	}{
		{"row 0 image 0", gridMargin + labelW, gridMargin, 0},
		{"row 0 image 1, bottom right", gridMargin + labelW + 8 + 3 + 7, gridMargin + 7, 100},
		{"row 1 image 0", gridMargin + labelW, gridMargin + rowH + 3, 200},
		{"gap between cells", gridMargin + labelW + 8, gridMargin, 255},
		{"margin", 0, 0, 255},
	}
	for _, c := range cells {
		if got := at(c.x, c.y); got != c.want {
			t.Errorf("%s at (%d,%d): got %d, want %d", c.name, c.x, c.y, got, c.want)
		}
	}
	ink := 0
	for y := gridMargin; y < gridMargin+rowH; y++ {
		for x := gridMargin; x < gridMargin+labelW; x++ {
			if at(x, y) == gridText {
				ink++
			}
		}
	}
	if ink < 20 {
		t.Fatalf("label area of row 0 has %d text pixels, want the word Dress drawn", ink)
	}
	if _, err := EncodePNG(g); err != nil {
		t.Fatal(err)
	}
}

func TestGridRefuses(t *testing.T) {
	tests := []struct {
		name string
		rows []GridRow
	}{
		{"no rows", nil},
		{"rows without images", []GridRow{{Label: "x"}}},
		{"short pixel buffer", []GridRow{{Images: []Image{{Width: 2, Height: 2, Channels: 1, Pix: []uint8{1}}}}}},
		{"two channels", []GridRow{{Images: []Image{solid(2, 2, 2, 0)}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Grid(tc.rows, GridOptions{}); !errors.Is(err, ErrInvalidImage) {
				t.Fatalf("got %v, want ErrInvalidImage", err)
			}
		})
	}
}

func TestGlyphFallback(t *testing.T) {
	if glyph('é') != glyph('?') || glyph('\n') != glyph('?') {
		t.Fatal("characters outside printable ASCII must draw as '?'")
	}
	if glyph('A') == glyph(' ') {
		t.Fatal("'A' draws as a blank")
	}
}
