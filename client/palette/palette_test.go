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

// TestTypeOf: the fine-to-coarse table is the training code's (scenes.py COARSE_OF over
// fashion_mnist.LABELS), and every type in it has a colour.
func TestTypeOf(t *testing.T) {
	labels := []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
	coarseOf := []int{0, 1, 0, 2, 0, 3, 0, 3, 4, 3}
	if len(TypeOf) != len(labels) {
		t.Errorf("TypeOf has %d categories, want %d", len(TypeOf), len(labels))
	}
	for i, l := range labels {
		if got, want := TypeOf[l], Types[coarseOf[i]]; got != want {
			t.Errorf("TypeOf[%q] = %q, want %q", l, got, want)
		}
		if _, ok := ByType[TypeOf[l]]; !ok {
			t.Errorf("%q's type %q has no colour", l, TypeOf[l])
		}
	}
}
