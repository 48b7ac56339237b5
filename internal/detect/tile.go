package detect

import (
	"fmt"
	"math"
	"sort"
)

// Tiling says whether the detector also looks at overlapping tiles of a picture.
//
// The detector sees its whole input shrunk to a fixed size (160x160 for the embedded
// one), so a garment of 60 pixels in a 640x480 camera frame shrinks to 15 and is
// missed. Tiles fix that the way SAHI (slicing aided hyper inference) does: the
// detector also runs on overlapping tiles of about twice its input size, each tile at a
// scale it learnt, and the answers of the whole picture and of every tile are merged by
// non-maximum suppression. All of a request's tiles run in one batch.
type Tiling int

const (
	// TilingAuto tiles a picture more than AutoTileRatio times the detector's input on
	// either side, and only such a picture.
	TilingAuto Tiling = iota
	// TilingOff runs the detector on the whole picture only.
	TilingOff
	// TilingOn tiles any picture larger than one tile.
	TilingOn
)

func (t Tiling) String() string {
	switch t {
	case TilingAuto:
		return "auto"
	case TilingOff:
		return "off"
	case TilingOn:
		return "on"
	}
	return fmt.Sprintf("Tiling(%d)", int(t))
}

// Tiling parameters. The embedded detector learnt pictures of 224..400 x 192..336
// pixels shrunk to 160x160 (a factor of 1.2 to 2.5), so tiles of twice its input sit
// in the middle of that range, and a picture up to 2.5 times its input needs none.
const (
	// AutoTileRatio is how many times the detector's input a side must exceed before
	// TilingAuto tiles the picture.
	AutoTileRatio = 2.5
	// TileRatio is a tile's side in detector inputs.
	TileRatio = 2.0
	// TileOverlap is the least share of a tile that overlaps its neighbour: a garment up
	// to this share of a tile wide lies whole inside at least one tile.
	TileOverlap = 0.3
	// MaxTiles caps the tiles of one picture; a larger picture gets larger tiles.
	MaxTiles = 16
	// tileEdgeMargin is how close, as a share of the tile, a box may come to an edge
	// the tile shares with a neighbour before it counts as cut off by the tile. A cut-off
	// box is dropped: the garment lies whole in a neighbouring tile or in the picture.
	tileEdgeMargin = 0.02
	// mergeIoU is the overlap above which two boxes of one class are the same garment.
	mergeIoU = 0.5
)

// Rect is a region of a picture in pixels; the max edges are exclusive.
type Rect struct {
	X, Y, W, H int
}

// Tiles returns the tiles a picture of width x height is searched in, for a detector
// whose input is inW x inH, beside the whole picture itself; none when mode or the
// picture's size calls for no tiling.
func Tiles(width, height, inW, inH int, mode Tiling) []Rect {
	if mode == TilingOff || inW < 1 || inH < 1 {
		return nil
	}
	if mode == TilingAuto && float64(width) <= AutoTileRatio*float64(inW) && float64(height) <= AutoTileRatio*float64(inH) {
		return nil
	}
	// Grow the tiles until there are few enough of them.
	tw, th := TileRatio*float64(inW), TileRatio*float64(inH)
	var xs, ys []int
	var w, h int
	for {
		w, h = int(math.Round(tw)), int(math.Round(th))
		if xs, ys = tileStarts(width, w), tileStarts(height, h); len(xs)*len(ys) <= MaxTiles {
			break
		}
		tw, th = tw*1.25, th*1.25
	}
	if len(xs)*len(ys) == 1 {
		return nil // one tile is the whole picture
	}
	w, h = min(width, w), min(height, h)
	tiles := make([]Rect, 0, len(xs)*len(ys))
	for _, y := range ys {
		for _, x := range xs {
			tiles = append(tiles, Rect{X: x, Y: y, W: w, H: h})
		}
	}
	return tiles
}

// tileStarts spreads tiles of the given size evenly over a side of length n, each
// overlapping the next by at least TileOverlap of a tile, and returns their starts.
func tileStarts(n, size int) []int {
	if n <= size {
		return []int{0}
	}
	overlap := int(math.Ceil(TileOverlap * float64(size)))
	count := int(math.Ceil(float64(n-overlap) / float64(size-overlap)))
	starts := make([]int, count)
	for i := range starts {
		starts[i] = int(math.Round(float64(i) * float64(n-size) / float64(count-1)))
	}
	return starts
}

// cutOff reports whether box b, in the picture's pixels, touches an edge that tile t
// shares with another tile (an edge inside the picture).
func cutOff(b Box, t Rect, width, height int) bool {
	mx, my := tileEdgeMargin*float32(t.W), tileEdgeMargin*float32(t.H)
	x0, y0, x1, y1 := float32(t.X), float32(t.Y), float32(t.X+t.W), float32(t.Y+t.H)
	return (t.X > 0 && b.XMin <= x0+mx) || (t.Y > 0 && b.YMin <= y0+my) ||
		(t.X+t.W < width && b.XMax >= x1-mx) || (t.Y+t.H < height && b.YMax >= y1-my)
}

// merge keeps, best score first, each detection that overlaps no better one of its
// class by more than mergeIoU: greedy per-class non-maximum suppression.
func merge(dets []Detection) []Detection {
	sort.SliceStable(dets, func(i, j int) bool { return dets[i].Score > dets[j].Score })
	kept := dets[:0:0]
	for _, d := range dets {
		dup := false
		for _, k := range kept {
			if k.TypeIndex == d.TypeIndex && IoU(k.Box, d.Box) > mergeIoU {
				dup = true
				break
			}
		}
		if !dup {
			kept = append(kept, d)
		}
	}
	return kept
}

// IoU is the intersection over union of two boxes; 0 when either is empty.
func IoU(a, b Box) float32 {
	iw := min(a.XMax, b.XMax) - max(a.XMin, b.XMin)
	ih := min(a.YMax, b.YMax) - max(a.YMin, b.YMin)
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := iw * ih
	union := (a.XMax-a.XMin)*(a.YMax-a.YMin) + (b.XMax-b.XMin)*(b.YMax-b.YMin) - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}
