package inference

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/atelier-vision/atelier/internal/errkind"
)

func TestElements(t *testing.T) {
	tests := []struct {
		name    string
		shape   []int64
		want    int64
		wantErr bool
	}{
		{"scalar", nil, 1, false},
		{"batch", []int64{2, 28, 28, 1}, 1568, false},
		{"empty", []int64{0, 5}, 0, false},
		{"negative", []int64{2, -1}, 0, true},
		{"overflow", []int64{1 << 40, 1 << 40}, 0, true},
		{"just over the limit", []int64{MaxElements + 1}, 0, true},
		{"rank at the limit", slices.Repeat([]int64{1}, MaxRank), 1, false},
		{"rank over the limit", slices.Repeat([]int64{1}, MaxRank+1), 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Elements("x", tc.shape)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
			if err != nil && !errors.Is(err, errkind.Invalid) {
				t.Fatalf("got %v, want an Invalid error", err)
			}
		})
	}
}

// FuzzDecodeBytes checks that any buffer either decodes to elements that encode back
// to it or is refused as Invalid, and never panics.
func FuzzDecodeBytes(f *testing.F) {
	f.Add(EncodeBytes([][]byte{[]byte("abc"), nil, []byte("de")}), int64(3))
	f.Add([]byte{255, 255, 255, 255, 1}, int64(1))
	f.Add([]byte{}, int64(0))
	f.Fuzz(func(t *testing.T, raw []byte, n int64) {
		if n < 0 || n > 1<<16 {
			return
		}
		elems, err := DecodeBytes("x", raw, n)
		if err != nil {
			if !errors.Is(err, errkind.Invalid) {
				t.Fatalf("got %v, want an Invalid error", err)
			}
			return
		}
		if int64(len(elems)) != n || !bytes.Equal(EncodeBytes(elems), raw) {
			t.Fatalf("decoded %d elements that do not encode back to the buffer", len(elems))
		}
	})
}
