package models

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/atelier-vision/atelier/internal/tensor"
)

type nopEngine struct{}

func (nopEngine) Run(context.Context, string, map[string]*tensor.Tensor, []string) (map[string]*tensor.Tensor, error) {
	return nil, nil
}
func (nopEngine) Close() error { return nil }

func classifierSig() []tensor.Signature {
	return []tensor.Signature{{Name: ServingSignature,
		Inputs:  []tensor.Info{{Key: "images", DType: tensor.Uint8, Shape: []int64{-1, 28, 28, 1}}},
		Outputs: []tensor.Info{{Key: "probabilities", DType: tensor.Float32, Shape: []int64{-1, 10}}}}}
}

func generatorSig() []tensor.Signature {
	return []tensor.Signature{{Name: ServingSignature,
		Inputs:  []tensor.Info{{Key: "labels", DType: tensor.Int32, Shape: []int64{-1}}, {Key: "z", DType: tensor.Float32, Shape: []int64{-1, 64}}},
		Outputs: []tensor.Info{{Key: "images", DType: tensor.Uint8, Shape: []int64{-1, 28, 28, 1}}}}}
}

// layout writes empty saved_model.pb files for the given name/version folders.
func layout(t *testing.T, dirs ...string) string {
	root := t.TempDir()
	for _, d := range dirs {
		os.MkdirAll(filepath.Join(root, d, "assets"), 0o755)
		os.WriteFile(filepath.Join(root, d, "saved_model.pb"), nil, 0o644)
	}
	os.WriteFile(filepath.Join(root, "classifier", "2", "assets", "labels.txt"), []byte("a\nb\n"), 0o644)
	return root
}

func fakeLoader(dir string) (tensor.Engine, []tensor.Signature, error) {
	if filepath.Base(filepath.Dir(dir)) == "gan" {
		return nopEngine{}, generatorSig(), nil
	}
	return nopEngine{}, classifierSig(), nil
}

func TestRepository(t *testing.T) {
	root := layout(t, "classifier/1", "classifier/2", "gan/7", "notes/draft")
	repo, err := Open(root, fakeLoader, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		spec        Spec
		role        Role
		wantName    string
		wantVersion int64
		wantErr     error
	}{
		{"default classifier is newest", Spec{}, RoleClassifier, "classifier", 2, nil},
		{"explicit version", Spec{Name: "classifier", Version: 1}, RoleClassifier, "classifier", 1, nil},
		{"default generator", Spec{}, RoleGenerator, "gan", 7, nil},
		{"unknown name", Spec{Name: "nope"}, RoleClassifier, "", 0, ErrNotFound},
		{"unknown version", Spec{Name: "classifier", Version: 9}, RoleClassifier, "", 0, ErrNotFound},
		{"wrong role", Spec{Name: "gan"}, RoleClassifier, "", 0, ErrWrongRole},
		{"no detector", Spec{}, RoleDetector, "", 0, ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := repo.Get(tc.spec, tc.role)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if err == nil && (m.Name != tc.wantName || m.Version != tc.wantVersion) {
				t.Fatalf("got %s, want %s:%d", m.Spec(), tc.wantName, tc.wantVersion)
			}
		})
	}
	m, _ := repo.Get(Spec{}, RoleClassifier)
	if len(m.Labels) != 2 || m.Labels[1] != "b" {
		t.Fatalf("got labels %v, want [a b]", m.Labels)
	}
	if h, w, c, err := m.ImageShape(); err != nil || h != 28 || w != 28 || c != 1 {
		t.Fatalf("got shape %d %d %d %v, want 28 28 1", h, w, c, err)
	}
	if got := repo.Names(); len(got) != 2 {
		t.Fatalf("got names %v, want classifier and gan (notes has no numeric version)", got)
	}
}

func TestOpenRefusesUnknownRoleAndEmptyRepository(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := Open(t.TempDir(), fakeLoader, log); err == nil {
		t.Fatal("an empty repository opened without error")
	}
	odd := func(string) (tensor.Engine, []tensor.Signature, error) {
		return nopEngine{}, []tensor.Signature{{Name: ServingSignature}}, nil
	}
	if _, err := Open(layout(t, "classifier/1", "classifier/2"), odd, log); err == nil {
		t.Fatal("a model with no recognisable role opened without error")
	}
}
