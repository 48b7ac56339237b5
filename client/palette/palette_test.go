package palette

import (
	"image/color"
	"testing"
)

func TestCategories(t *testing.T) {
	got := Categories(map[string]string{"Shirt": "top", "Coat": "top", "Dress": "full-body", "Hat": "headwear"})
	for _, tc := range []struct {
		name, category string
		want           color.RGBA
	}{
		{"first of a type in name order keeps the type's colour", "Coat", ByType["top"]},
		{"only one of its type", "Dress", ByType["full-body"]},
		{"an unknown type is grey", "Hat", Other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got[tc.category] != tc.want {
				t.Errorf("got %v, want %v", got[tc.category], tc.want)
			}
		})
	}
	shirt, top := got["Shirt"], ByType["top"]
	if shirt == top || shirt.R < top.R || shirt.G < top.G || shirt.B < top.B {
		t.Errorf("Shirt is %v, want a lighter shade of top's %v", shirt, top)
	}
}

func TestHexAndLight(t *testing.T) {
	if got := Hex(ByType["full-body"]); got != "#ffe119" {
		t.Errorf("Hex(full-body) = %s, want #ffe119", got)
	}
	if !Light(ByType["full-body"]) || Light(ByType["footwear"]) {
		t.Errorf("want yellow light (black text) and blue dark (white text)")
	}
	if Of("nothing") != Other {
		t.Errorf("Of(unknown) = %v, want Other", Of("nothing"))
	}
}
