package tf

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/atelier-vision/atelier/internal/tensor"
)

func newResizer(t *testing.T) *Resizer {
	t.Helper()
	r, err := NewResizer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestResizeMatchesPython compares bytes with testdata/make_models.py's resize, the
// Python expression in Resizer's doc comment.
func TestResizeMatchesPython(t *testing.T) {
	e := readExpected(t)
	r := newResizer(t)
	if len(e.Resize) == 0 {
		t.Fatal("expected.json has no resize cases")
	}
	for _, c := range e.Resize {
		in, want := c.In.toTensor(t), c.Out.toTensor(t)
		h, w, ch := int(in.Shape[0]), int(in.Shape[1]), int(in.Shape[2])
		oh, ow := int(want.Shape[0]), int(want.Shape[1])
		t.Run(fmt.Sprintf("%dx%dx%d_to_%dx%d", h, w, ch, oh, ow), func(t *testing.T) {
			got, err := r.Resize(in.Uint8, h, w, ch, oh, ow)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want.Uint8) {
				t.Fatalf("got %d bytes, want %d", len(got), len(want.Uint8))
			}
			for i := range got {
				if got[i] != want.Uint8[i] {
					t.Fatalf("byte %d: got %d, want %d", i, got[i], want.Uint8[i])
				}
			}
		})
	}
}

func TestResizeBadArgs(t *testing.T) {
	r := newResizer(t)
	tests := []struct {
		name                string
		pix                 []uint8
		h, w, c, outH, outW int
	}{
		{"short buffer", make([]uint8, 11), 2, 2, 3, 4, 4},
		{"zero height", nil, 0, 2, 3, 4, 4},
		{"zero output", make([]uint8, 12), 2, 2, 3, 0, 4},
		{"negative channels", make([]uint8, 12), 2, 2, -3, 4, 4},
		{"huge output", make([]uint8, 12), 2, 2, 3, 1 << 16, 1 << 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Resize(tt.pix, tt.h, tt.w, tt.c, tt.outH, tt.outW)
			if !errors.Is(err, tensor.ErrBadInput) {
				t.Fatalf("got %v, want an error wrapping ErrBadInput", err)
			}
		})
	}
}

func TestResizeConcurrentAndClose(t *testing.T) {
	r := newResizer(t)
	pix := make([]uint8, 6*5*3)
	for i := range pix {
		pix[i] = uint8(i * 7)
	}
	want, err := r.Resize(pix, 6, 5, 3, 9, 4)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for range 50 {
				got, err := r.Resize(pix, 6, 5, 3, 9, 4)
				if err == nil && string(got) != string(want) {
					err = fmt.Errorf("got %v, want %v", got, want)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range 2 {
		if err := r.Close(); err != nil {
			t.Fatalf("Close #%d: got %v, want nil", i+1, err)
		}
	}
	if _, err := r.Resize(pix, 6, 5, 3, 9, 4); !errors.Is(err, tensor.ErrClosed) {
		t.Fatalf("Resize after Close: got %v, want ErrClosed", err)
	}
}
