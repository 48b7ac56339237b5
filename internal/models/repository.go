package models

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/atelier-vision/atelier/internal/tensor"
)

// Repository holds every loaded model version, by name.
type Repository struct {
	byName   map[string][]*Model // newest version first
	defaults map[Role]string
}

// Loader opens one SavedModel folder and returns its engine and signatures; the
// binary passes one backed by internal/tf, tests pass fakes.
type Loader func(dir string) (tensor.Engine, []tensor.Signature, error)

// NewRepository returns a repository holding the given, already loaded, models.
func NewRepository(ms ...*Model) (*Repository, error) {
	r := &Repository{byName: map[string][]*Model{}, defaults: map[Role]string{}}
	for _, m := range ms {
		r.byName[m.Name] = append(r.byName[m.Name], m)
	}
	for name, vs := range r.byName {
		sort.Slice(vs, func(i, j int) bool { return vs[i].Version > vs[j].Version })
		for _, v := range vs[1:] {
			if v.Role != vs[0].Role {
				return nil, fmt.Errorf("model %s: version %d is a %s but version %d is a %s", name, v.Version, v.Role, vs[0].Version, vs[0].Role)
			}
		}
	}
	if len(r.byName) == 0 {
		return nil, errors.New("model repository: no models")
	}
	r.chooseDefaults()
	return r, nil
}

// Open loads every <name>/<version>/ SavedModel under root. A folder that is not a
// model is skipped; a model that fails to load or has no recognisable role is an error,
// so a broken deployment fails at start-up rather than at the first request.
func Open(root string, load Loader, log *slog.Logger) (*Repository, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("model repository: %w", err)
	}
	r := &Repository{byName: map[string][]*Model{}, defaults: map[Role]string{}}
	for _, e := range entries {
		// Stat follows symbolic links, so a linked model folder counts as a folder.
		if info, err := os.Stat(filepath.Join(root, e.Name())); err != nil || !info.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		versions, err := versionDirs(filepath.Join(root, e.Name()))
		if err != nil {
			r.Close()
			return nil, err
		}
		for _, v := range versions {
			m, err := loadVersion(e.Name(), v, filepath.Join(root, e.Name(), strconv.FormatInt(v, 10)), load)
			if err != nil {
				r.Close()
				return nil, err
			}
			log.Info("model loaded", "model", m.Name, "version", m.Version, "role", m.Role.String(),
				"labels", len(m.Labels), "dir", m.Dir)
			r.byName[m.Name] = append(r.byName[m.Name], m)
		}
	}
	if len(r.byName) == 0 {
		return nil, fmt.Errorf("model repository %s holds no model (want <name>/<version>/saved_model.pb; run `make models`)", root)
	}
	r.chooseDefaults()
	return r, nil
}

// versionDirs lists the numeric sub-folders holding a saved_model.pb, newest first.
func versionDirs(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var versions []int64
	for _, e := range entries {
		v, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || v <= 0 || !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "saved_model.pb")); err == nil {
			versions = append(versions, v)
		}
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i] > versions[j] })
	return versions, nil
}

func loadVersion(name string, version int64, dir string, load Loader) (*Model, error) {
	engine, sigs, err := load(dir)
	if err != nil {
		return nil, fmt.Errorf("load %s:%d: %w", name, version, err)
	}
	labels, err := readLabels(filepath.Join(dir, "assets", "labels.txt"))
	if err != nil {
		engine.Close()
		return nil, fmt.Errorf("load %s:%d: %w", name, version, err)
	}
	m, err := NewModel(Spec{Name: name, Version: version}, dir, engine, sigs, labels)
	if err != nil {
		engine.Close()
		return nil, fmt.Errorf("load %w", err)
	}
	return m, nil
}

// readLabels reads one label per line; a model without labels.txt gets none.
func readLabels(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var labels []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if line := strings.TrimSpace(s.Text()); line != "" {
			labels = append(labels, line)
		}
	}
	return labels, s.Err()
}

// chooseDefaults picks each role's default model: the model named after the role
// ("classifier", "detector", "generator") if there is one, else the alphabetically
// first model of that role.
func (r *Repository) chooseDefaults() {
	for _, name := range r.Names() {
		role := r.byName[name][0].Role
		if cur, ok := r.defaults[role]; !ok || (name == role.String() && cur != role.String()) {
			r.defaults[role] = name
		}
	}
}

// Names returns the model names, sorted.
func (r *Repository) Names() []string {
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Versions returns the loaded versions of a model, newest first.
func (r *Repository) Versions(name string) ([]*Model, error) {
	vs, ok := r.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: no model named %q (loaded: %s)", ErrNotFound, name, strings.Join(r.Names(), ", "))
	}
	return vs, nil
}

// Default returns the name of the default model for a role, or "" if none is loaded.
func (r *Repository) Default(role Role) string { return r.defaults[role] }

// Get returns the model version a request asks for. An empty name means the role's
// default; version 0 means the newest. The model must have the given role.
func (r *Repository) Get(spec Spec, role Role) (*Model, error) {
	name := spec.Name
	if name == "" {
		if name = r.defaults[role]; name == "" {
			return nil, fmt.Errorf("%w: no %s model is loaded", ErrNotFound, role)
		}
	}
	vs, err := r.Versions(name)
	if err != nil {
		return nil, err
	}
	m := vs[0]
	if spec.Version != 0 {
		m = nil
		for _, v := range vs {
			if v.Version == spec.Version {
				m = v
			}
		}
		if m == nil {
			return nil, fmt.Errorf("%w: model %q has no version %d (loaded: %s)", ErrNotFound, name, spec.Version, versionList(vs))
		}
	}
	if m.Role != role {
		return nil, fmt.Errorf("%w: model %q is a %s, not a %s", ErrWrongRole, name, m.Role, role)
	}
	return m, nil
}

func versionList(vs []*Model) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.FormatInt(v.Version, 10)
	}
	return strings.Join(parts, ", ")
}

// Close closes every loaded model's engine.
func (r *Repository) Close() {
	for _, vs := range r.byName {
		for _, m := range vs {
			m.Engine.Close()
		}
	}
}
