package models

import (
	"errors"
	"testing"
)

func TestRepositoryGet(t *testing.T) {
	root := t.TempDir()
	writeVersion(t, root, "classifier/1", "classifier", tenLabels...)
	writeVersion(t, root, "classifier/2", "classifier", tenLabels...)
	writeVersion(t, root, "gan/7", "generator")
	writeVersion(t, root, "notes/draft", "classifier")
	f := mustStart(t, root, "model classifier\n policy all\n label stable 1\n")
	repo := f.m.Repository()
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
		{"label", Spec{Name: "classifier", Label: "stable"}, RoleClassifier, "classifier", 1, nil},
		{"unknown label", Spec{Name: "classifier", Label: "canary"}, RoleClassifier, "", 0, ErrNotFound},
		{"version and label", Spec{Name: "classifier", Version: 1, Label: "stable"}, RoleClassifier, "", 0, ErrInvalidSpec},
		{"default generator", Spec{}, RoleGenerator, "gan", 7, nil},
		{"unknown name", Spec{Name: "nope"}, RoleClassifier, "", 0, ErrNotFound},
		{"unknown version", Spec{Name: "classifier", Version: 9}, RoleClassifier, "", 0, ErrNotFound},
		{"wrong role", Spec{Name: "gan"}, RoleClassifier, "", 0, ErrWrongRole},
		{"no detector", Spec{}, RoleDetector, "", 0, ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, release, err := repo.Acquire(tc.spec, tc.role)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if err == nil {
				release()
				if m.Name != tc.wantName || m.Version != tc.wantVersion {
					t.Fatalf("got %s, want %s:%d", m.Spec(), tc.wantName, tc.wantVersion)
				}
			}
		})
	}
	m, _ := repo.Get(Spec{}, RoleClassifier)
	if len(m.Labels) != 10 || m.Labels[1] != "b" {
		t.Fatalf("got labels %v, want a..j", m.Labels)
	}
	if got := repo.Names(); len(got) != 2 {
		t.Fatalf("got names %v, want classifier and gan (notes has no numeric version)", got)
	}
}

func TestNewRepositoryRefusesMixedRoles(t *testing.T) {
	c, _ := NewModel(Spec{Name: "x", Version: 1}, "", &fakeEngine{}, classifierSig(), nil)
	g, _ := NewModel(Spec{Name: "x", Version: 2}, "", &fakeEngine{}, generatorSig(), nil)
	if _, err := NewRepository(c, g); err == nil {
		t.Fatal("a model whose versions have two roles was accepted")
	}
	if _, err := NewRepository(); err == nil {
		t.Fatal("an empty repository was accepted")
	}
}
