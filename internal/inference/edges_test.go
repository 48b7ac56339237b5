package inference

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/models"
	"github.com/atelier-vision/atelier/internal/tensor"
)

// TestElementsEdges: shapes at and past the limits, with the message that names the
// rule; a 0 does not let a huge dimension through.
func TestElementsEdges(t *testing.T) {
	tests := []struct {
		name  string
		shape []int64
		want  int64
		err   string // in the message; "" for none
	}{
		{"at the limit", []int64{MaxElements}, MaxElements, ""},
		{"at the limit, split", []int64{1 << 16, 1 << 15}, MaxElements, ""},
		{"one past, split", []int64{MaxElements/2 + 1, 2}, 0, "holds more than 2147483648 elements"},
		{"int64 max", []int64{math.MaxInt64}, 0, "holds more than"},
		{"a product that wraps int64 to 0", []int64{1 << 32, 1 << 32}, 0, "holds more than"},
		{"a product that wraps int64 to 2", []int64{3, 0x5555555555555556}, 0, "holds more than"},
		{"int64 min", []int64{math.MinInt64}, 0, "dimension 0 is -9223372036854775808, want >= 0"},
		{"-1 is for signatures only", []int64{-1, 28}, 0, "dimension 0 is -1"},
		{"zeros", []int64{0, 0}, 0, ""},
		{"a 0 then big dimensions within the limit", []int64{0, 1 << 16, 1 << 15}, 0, ""},
		{"a 0 then a huge dimension", []int64{0, 1 << 40}, 0, "dimensions other than 0 multiply to more than 2147483648"},
		{"a huge dimension then a 0", []int64{1 << 62, 0}, 0, "dimensions other than 0 multiply to more than 2147483648"},
		{"a 0 among dimensions that multiply past the limit", []int64{1, 1 << 20, 0, 1 << 20}, 0, "other than 0"},
		{"rank 32 of 2s", slices.Repeat([]int64{2}, 32), 0, "holds more than"},
		{"rank 31 of 2s", slices.Repeat([]int64{2}, 31), 1 << 31, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Elements("x", tc.shape)
			if tc.err == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %d, %v; want %d", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), `input "x"`) {
				t.Fatalf("got %d, %v; want an Invalid error naming the input and saying %q", got, err, tc.err)
			}
		})
	}
}

// TestDecodeBytesEdges: length prefixes of 0, exactly what remains, and 2^32-1.
func TestDecodeBytesEdges(t *testing.T) {
	prefix := func(n uint32, body string) []byte { return append(binary.LittleEndian.AppendUint32(nil, n), body...) }
	tests := []struct {
		name string
		raw  []byte
		n    int64
		want []string // the elements; nil when refused
		err  string
	}{
		{"no elements, no bytes", nil, 0, []string{}, ""},
		{"no elements, bytes left", []byte{0}, 0, nil, "1 bytes left over after 0 BYTES elements"},
		{"an empty element", prefix(0, ""), 1, []string{""}, ""},
		{"three empty elements", append(append(prefix(0, ""), prefix(0, "")...), prefix(0, "")...), 3, []string{"", "", ""}, ""},
		{"a prefix of exactly what remains", prefix(3, "abc"), 1, []string{"abc"}, ""},
		{"a prefix one past what remains", prefix(4, "abc"), 1, nil, "length prefix 4 runs past the buffer (3 bytes left)"},
		{"a prefix of 2^32-1", prefix(math.MaxUint32, "abc"), 1, nil, "length prefix 4294967295 runs past"},
		{"a prefix cut short", []byte{3, 0, 0}, 1, nil, "3 bytes left, too few for its 4-byte length"},
		{"a shape claiming 2^31 elements", prefix(0, ""), MaxElements, nil, "BYTES element 1: 0 bytes left"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeBytes("x", tc.raw, tc.n)
			if tc.want == nil {
				if !errors.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, %v; want an Invalid error saying %q", got, err, tc.err)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
			for i := range got {
				if string(got[i]) != tc.want[i] {
					t.Fatalf("element %d: got %q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// edgeEngine answers every image with ten equal probabilities.
type edgeEngine struct{}

func (edgeEngine) Run(_ context.Context, _ string, in map[string]*tensor.Tensor, _ []string) (map[string]*tensor.Tensor, error) {
	n := in["images"].Shape[0]
	out, err := tensor.NewFloat32([]int64{n, 10}, make([]float32, n*10))
	return map[string]*tensor.Tensor{"probabilities": out}, err
}

func (edgeEngine) Close() error { return nil }

// TestImageVariantShadowedByAModel: a repository model named like another model's
// image variant (classifier_image beside classifier) is what that name resolves to,
// so the variant is neither listed (the name would be listed twice) nor advertised as
// the tensor model's image_model.
func TestImageVariantShadowedByAModel(t *testing.T) {
	sig := []tensor.Signature{{Name: models.ServingSignature,
		Inputs:  []tensor.Info{{Key: "images", DType: tensor.Uint8, Shape: []int64{-1, 28, 28, 1}}},
		Outputs: []tensor.Info{{Key: "probabilities", DType: tensor.Float32, Shape: []int64{-1, 10}}}}}
	labels := strings.Split("a,b,c,d,e,f,g,h,i,j", ",")
	var ms []*models.Model
	for _, name := range []string{"classifier", "classifier_image", "other"} {
		m, err := models.NewModel(models.Spec{Name: name, Version: 1}, "", edgeEngine{}, sig, labels)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	repo, err := models.NewRepository(ms...)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Repo: repo}
	if got, want := strings.Join(s.Names(), ","), "classifier,classifier_image,classifier_image_image,other,other_image"; got != want {
		t.Fatalf("Names: got %s, want %s", got, want)
	}
	md, err := s.Metadata("classifier", "")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := md.Properties["image_model"]; ok {
		t.Fatalf("classifier's image_model is %q, a name that resolves to another model", v)
	}
	for name, want := range map[string]string{"classifier_image": PlatformSavedModel, "classifier_image_image": PlatformImage, "other_image": PlatformImage} {
		md, err := s.Metadata(name, "")
		if err != nil || md.Platform != want {
			t.Fatalf("Metadata(%s): got %v, %v; want platform %s", name, md.Platform, err, want)
		}
	}
	if md, _ := s.Metadata("classifier_image", ""); md.Properties["image_model"] != "classifier_image_image" {
		t.Fatalf("classifier_image's image_model: got %q, want classifier_image_image", md.Properties["image_model"])
	}
	if md, _ := s.Metadata("other", ""); md.Properties["image_model"] != "other_image" {
		t.Fatalf("other's image_model: got %q, want other_image", md.Properties["image_model"])
	}
}
