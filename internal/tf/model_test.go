package tf

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/atelier-vision/atelier/internal/tensor"
	tfb "github.com/galeone/tensorflow/tensorflow/go"
)

func TestSignatures(t *testing.T) {
	tests := []struct {
		model string
		want  []tensor.Signature
	}{
		{"affine", []tensor.Signature{
			{Name: "serving_default",
				Inputs: []tensor.Info{{Key: "images", DType: tensor.Uint8, Shape: []int64{-1, 4, 4, 1}}},
				Outputs: []tensor.Info{
					{Key: "logits", DType: tensor.Float32, Shape: []int64{-1, 3}},
					{Key: "probabilities", DType: tensor.Float32, Shape: []int64{-1, 3}},
				}},
			{Name: "total",
				Inputs: []tensor.Info{{Key: "images", DType: tensor.Uint8, Shape: []int64{-1, 4, 4, 1}}},
				Outputs: []tensor.Info{
					{Key: "count", DType: tensor.Int64, Shape: []int64{}},
					{Key: "total", DType: tensor.Float32, Shape: []int64{}},
				}},
		}},
		{"generator", []tensor.Signature{
			{Name: "serving_default",
				Inputs: []tensor.Info{
					{Key: "labels", DType: tensor.Int32, Shape: []int64{-1}},
					{Key: "z", DType: tensor.Float32, Shape: []int64{-1, 8}},
				},
				Outputs: []tensor.Info{
					{Key: "images", DType: tensor.Uint8, Shape: []int64{-1, 4, 4, 1}},
					{Key: "scores", DType: tensor.Float32, Shape: []int64{-1}},
				}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			m := loadModel(t, tt.model)
			if got := m.Signatures(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for _, s := range tt.want {
				if got, ok := m.Signature(s.Name); !ok || got.Name != s.Name {
					t.Fatalf("tensor.Signature(%q): got %q %v, want found", s.Name, got.Name, ok)
				}
			}
			if _, ok := m.Signature("nope"); ok {
				t.Fatal(`tensor.Signature("nope"): got found, want not found`)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	models := fixtures(t)
	empty := t.TempDir()
	garbage := t.TempDir()
	if err := os.WriteFile(filepath.Join(garbage, "saved_model.pb"), []byte("not a protobuf"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		dir      string
		opts     Options
		notExist bool
	}{
		{"missing dir", filepath.Join(empty, "missing"), Options{}, true},
		{"empty dir", empty, Options{}, false},
		{"a file", file, Options{}, false},
		{"garbage saved_model.pb", garbage, Options{}, false},
		{"unknown tags", filepath.Join(models, "affine"), Options{Tags: []string{"train"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Load(tt.dir, tt.opts)
			if err == nil {
				m.Close()
				t.Fatalf("got a model, want an error")
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tt.notExist {
				t.Fatalf("got errors.Is(%v, fs.ErrNotExist) = %v, want %v", err, got, tt.notExist)
			}
			if m != nil {
				t.Fatalf("got model %v with error, want nil", m)
			}
			if want := tt.dir; !strings.Contains(err.Error(), want) {
				t.Fatalf("got error %q, want it to name %s", err, want)
			}
		})
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	m := loadModel(t, "affine")
	for i := range 2 {
		if err := m.Close(); err != nil {
			t.Fatalf("Close #%d: got %v, want nil", i+1, err)
		}
	}
	in, _ := tensor.NewUint8([]int64{1, 4, 4, 1}, make([]uint8, 16))
	_, err := m.Run(context.Background(), "serving_default", map[string]*tensor.Tensor{"images": in}, nil)
	if !errors.Is(err, tensor.ErrClosed) {
		t.Fatalf("Run after Close: got %v, want ErrClosed", err)
	}
}

func TestRecoverToTurnsPanicsIntoErrors(t *testing.T) {
	f := func() (err error) {
		defer recoverTo(&err, "tf: test: ")
		var o tfb.Output
		o.DataType() // the bindings panic on an Output without an Operation
		return nil
	}
	err := f()
	if err == nil || !strings.HasPrefix(err.Error(), "tf: test: panic in the TensorFlow bindings") {
		t.Fatalf("got %v, want a recovered panic", err)
	}
}
