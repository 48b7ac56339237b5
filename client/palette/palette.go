// Package palette holds the colours Atelier's clients give garments: one per coarse
// garment type (the detector's classes), and shades of it for the fine categories
// of that type. The CLI's `detect --draw` and the dashboard both read them here, so a
// dress is the same yellow in a PNG, on a camera tile and in a chart.
package palette

import (
	"fmt"
	"image/color"
	"slices"
)

// ByType is the colour of each coarse garment type.
var ByType = map[string]color.RGBA{
	"top":       {230, 25, 75, 255},
	"bottom":    {60, 180, 75, 255},
	"full-body": {255, 225, 25, 255},
	"footwear":  {0, 130, 200, 255},
	"bag":       {245, 130, 48, 255},
}

// Types lists the coarse garment types in the order charts and legends stack them.
var Types = []string{"top", "bottom", "full-body", "footwear", "bag"}

// TypeOf is the coarse garment type of each fine category the embedded models know
// (Fashion-MNIST's labels), as the training code groups them
// (savedmodels/atelier_train/scenes.py, COARSE_OF): fixed, so that a category has one
// type and one colour whatever the detector called the first box it was seen in.
var TypeOf = map[string]string{
	"T-shirt/top": "top",
	"Trouser":     "bottom",
	"Pullover":    "top",
	"Dress":       "full-body",
	"Coat":        "top",
	"Sandal":      "footwear",
	"Shirt":       "top",
	"Sneaker":     "footwear",
	"Bag":         "bag",
	"Ankle boot":  "footwear",
}

// Other is the colour of a garment type not in ByType.
var Other = color.RGBA{160, 160, 160, 255}

// Of returns the colour of a coarse garment type.
func Of(garmentType string) color.RGBA {
	if c, ok := ByType[garmentType]; ok {
		return c
	}
	return Other
}

// Hex renders c as a CSS colour, #rrggbb.
func Hex(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

// Light reports whether c is light enough to need black text on it (else white).
func Light(c color.RGBA) bool { return 299*int(c.R)+587*int(c.G)+114*int(c.B) > 160*1000 }

// Categories gives each fine category a shade of its garment type's colour:
// typeOf maps a category to its coarse type; the categories of one type, in name
// order, go from the type's colour towards white (the first keeps it exactly).
// Categories of no known type get Other.
func Categories(typeOf map[string]string) map[string]color.RGBA {
	byType := map[string][]string{}
	for cat, t := range typeOf {
		byType[t] = append(byType[t], cat)
	}
	out := make(map[string]color.RGBA, len(typeOf))
	for t, cats := range byType {
		slices.Sort(cats)
		base := Of(t)
		for i, cat := range cats {
			out[cat] = tint(base, float64(i)/float64(len(cats)+1))
		}
	}
	return out
}

// tint mixes c with white: f = 0 keeps c, f = 1 is white.
func tint(c color.RGBA, f float64) color.RGBA {
	mix := func(v uint8) uint8 { return uint8(float64(v) + (255-float64(v))*f*0.8 + 0.5) }
	return color.RGBA{mix(c.R), mix(c.G), mix(c.B), 255}
}
