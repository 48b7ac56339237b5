package models

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/atelier-vision/atelier/internal/errkind"
)

// Repository is the routing table: the AVAILABLE versions of every model, by name,
// and each model's version labels. It is safe for concurrent use; the Manager adds
// versions when they are warm and retires them when the policy lets them go, and the
// request paths Acquire the version a call asks for.
type Repository struct {
	mu       sync.RWMutex
	byName   map[string]*routes
	defaults map[Role]string
	onChange []func()
}

// routes are one model's available versions (newest first) and labels.
type routes struct {
	versions []*Model
	labels   map[string]int64
}

// ErrBadLabel marks a malformed version label.
var ErrBadLabel = errkind.New(errkind.Invalid, "bad version label")

// ErrLabelTarget marks a version label that names a version that is not available.
var ErrLabelTarget = errkind.New(errkind.FailedPrecondition, "label names a version that is not available")

var labelPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// NewRepository returns a repository holding the given, already loaded, models.
func NewRepository(ms ...*Model) (*Repository, error) {
	r := newRepository()
	for _, m := range ms {
		rt := r.byName[m.Name]
		if rt != nil && rt.versions[0].Role != m.Role {
			return nil, fmt.Errorf("model %s: version %d is a %s but version %d is a %s", m.Name, m.Version, m.Role, rt.versions[0].Version, rt.versions[0].Role)
		}
		r.add(m)
	}
	if len(r.byName) == 0 {
		return nil, errors.New("model repository: no models")
	}
	return r, nil
}

func newRepository() *Repository {
	return &Repository{byName: map[string]*routes{}, defaults: map[Role]string{}}
}

// OnChange registers f to run (without the repository's lock) after every change of
// the available versions.
func (r *Repository) OnChange(f func()) {
	r.mu.Lock()
	r.onChange = append(r.onChange, f)
	r.mu.Unlock()
}

func (r *Repository) changed() {
	r.mu.RLock()
	fs := append([]func(){}, r.onChange...)
	r.mu.RUnlock()
	for _, f := range fs {
		f()
	}
}

// add makes m routable; the caller holds the lock (or owns r).
func (r *Repository) add(m *Model) {
	rt := r.byName[m.Name]
	if rt == nil {
		rt = &routes{labels: map[string]int64{}}
		r.byName[m.Name] = rt
	}
	rt.versions = append(rt.versions, m)
	sort.Slice(rt.versions, func(i, j int) bool { return rt.versions[i].Version > rt.versions[j].Version })
	r.chooseDefaults()
}

// publish makes m routable; version 0 of its model switches to it if it is the newest.
func (r *Repository) publish(m *Model) {
	r.mu.Lock()
	r.add(m)
	r.mu.Unlock()
	r.changed()
}

// replace routes new in place of old, the same version loaded again: no call acquires
// old after replace returns. The caller waits for old's calls and then closes it.
func (r *Repository) replace(old, new *Model) {
	r.mu.Lock()
	if rt := r.byName[old.Name]; rt != nil {
		for i, v := range rt.versions {
			if v == old {
				rt.versions[i] = new
			}
		}
	}
	r.mu.Unlock()
	r.changed()
}

// retire takes a version out of routing: no call acquires it after retire returns.
// The caller waits for m.drain and then closes the engine.
func (r *Repository) retire(m *Model) {
	r.mu.Lock()
	if rt := r.byName[m.Name]; rt != nil {
		for i, v := range rt.versions {
			if v == m {
				rt.versions = append(rt.versions[:i:i], rt.versions[i+1:]...)
				break
			}
		}
		if len(rt.versions) == 0 {
			delete(r.byName, m.Name)
		}
	}
	r.chooseDefaults()
	r.mu.Unlock()
	r.changed()
}

// chooseDefaults picks each role's default model: the model named after the role
// ("classifier", "detector", "generator") if there is one, else the alphabetically
// first model of that role. The caller holds the lock.
func (r *Repository) chooseDefaults() {
	clear(r.defaults)
	for _, name := range r.names() {
		role := r.byName[name].versions[0].Role
		if cur, ok := r.defaults[role]; !ok || (name == role.String() && cur != role.String()) {
			r.defaults[role] = name
		}
	}
}

func (r *Repository) names() []string {
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Names returns the names of the models with an available version, sorted.
func (r *Repository) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.names()
}

// Versions returns the available versions of a model, newest first.
func (r *Repository) Versions(name string) ([]*Model, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rt, ok := r.byName[name]
	if !ok {
		return nil, r.errNoModel(name)
	}
	return append([]*Model(nil), rt.versions...), nil
}

// Labels returns a copy of a model's version labels.
func (r *Repository) Labels(name string) map[string]int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[string]int64{}
	if rt := r.byName[name]; rt != nil {
		for k, v := range rt.labels {
			out[k] = v
		}
	}
	return out
}

// CheckLabels checks that every label is well formed and names an available version
// of the model (version 0 removes a label and is always allowed).
func (r *Repository) CheckLabels(name string, labels map[string]int64) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.checkLabels(name, labels)
}

func (r *Repository) checkLabels(name string, labels map[string]int64) error {
	for _, l := range sortedLabels(labels) {
		if !labelPattern.MatchString(l) {
			return fmt.Errorf("%w: %q is not a label (1 to 64 of a-z, 0-9, '-', '_', starting with a letter)", ErrBadLabel, l)
		}
		v := labels[l]
		if v < 0 {
			return fmt.Errorf("%w: label %q names version %d; versions are positive (0 removes the label)", ErrBadLabel, l, v)
		}
		if v == 0 {
			continue
		}
		rt := r.byName[name]
		if rt == nil || find(rt.versions, v) == nil {
			loaded := "none"
			if rt != nil {
				loaded = versionList(rt.versions)
			}
			return fmt.Errorf("%w: label %q names version %d of %q, which is not available (available: %s)", ErrLabelTarget, l, v, name, loaded)
		}
	}
	return nil
}

// setLabels replaces (replace) or updates a model's labels after checking them.
func (r *Repository) setLabels(name string, labels map[string]int64, replace bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkLabels(name, labels); err != nil {
		return err
	}
	rt := r.byName[name]
	if rt == nil {
		if len(labels) == 0 || replace && allZero(labels) {
			return nil
		}
		return r.errNoModel(name)
	}
	if replace {
		clear(rt.labels)
	}
	for l, v := range labels {
		if v == 0 {
			delete(rt.labels, l)
		} else {
			rt.labels[l] = v
		}
	}
	return nil
}

func allZero(m map[string]int64) bool {
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}

func sortedLabels(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Default returns the name of the default model for a role, or "" if none is available.
func (r *Repository) Default(role Role) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.defaults[role]
}

// Get returns the model version a request asks for, for describing it; calls that run
// the model use Acquire. An empty name means the role's default; version 0 means the
// newest; a label means the version it names. The model must have the given role.
func (r *Repository) Get(spec Spec, role Role) (*Model, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.get(spec, role)
}

// Acquire is Get for a call that runs the model: the version is not unloaded until
// release is called. Call release exactly once, when the call is done with the model.
func (r *Repository) Acquire(spec Spec, role Role) (m *Model, release func(), err error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if m, err = r.get(spec, role); err != nil {
		return nil, nil, err
	}
	m.inflight.Add(1)
	var once sync.Once
	return m, func() { once.Do(m.inflight.Done) }, nil
}

func (r *Repository) get(spec Spec, role Role) (*Model, error) {
	if spec.Version != 0 && spec.Label != "" {
		return nil, fmt.Errorf("%w: set model.version or model.version_label, not both", ErrInvalidSpec)
	}
	name := spec.Name
	if name == "" {
		if name = r.defaults[role]; name == "" {
			return nil, fmt.Errorf("%w: no %s model is available (available: %s)", ErrNotFound, role, r.loaded())
		}
	}
	rt, ok := r.byName[name]
	if !ok {
		return nil, r.errNoModel(name)
	}
	m := rt.versions[0]
	if spec.Label != "" {
		v, ok := rt.labels[spec.Label]
		if !ok {
			return nil, fmt.Errorf("%w: model %q has no version label %q (labels: %s)", ErrNotFound, name, spec.Label, labelList(rt.labels))
		}
		if m = find(rt.versions, v); m == nil {
			return nil, fmt.Errorf("%w: label %q of model %q names version %d, which is not available (available: %s)",
				ErrNotFound, spec.Label, name, v, versionList(rt.versions))
		}
	} else if spec.Version != 0 {
		if m = find(rt.versions, spec.Version); m == nil {
			return nil, fmt.Errorf("%w: model %q has no version %d (available: %s)", ErrNotFound, name, spec.Version, versionList(rt.versions))
		}
	}
	if m.Role != role {
		return nil, fmt.Errorf("%w: model %q is a %s, not a %s", ErrWrongRole, name, m.Role, role)
	}
	return m, nil
}

func (r *Repository) errNoModel(name string) error {
	return fmt.Errorf("%w: no model named %q (available: %s)", ErrNotFound, name, r.loaded())
}

// loaded lists the available models and versions, as name:1,2 name2:7, for errors.
func (r *Repository) loaded() string {
	var parts []string
	for _, n := range r.names() {
		parts = append(parts, n+":"+versionList(r.byName[n].versions))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

func find(vs []*Model, v int64) *Model {
	for _, m := range vs {
		if m.Version == v {
			return m
		}
	}
	return nil
}

func versionList(vs []*Model) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.FormatInt(v.Version, 10)
	}
	return strings.Join(parts, ",")
}

func labelList(labels map[string]int64) string {
	if len(labels) == 0 {
		return "none"
	}
	var parts []string
	for _, l := range sortedLabels(labels) {
		parts = append(parts, fmt.Sprintf("%s=%d", l, labels[l]))
	}
	return strings.Join(parts, " ")
}

// Close closes every available version's engine, once its calls are done.
func (r *Repository) Close() {
	r.mu.Lock()
	var all []*Model
	for _, rt := range r.byName {
		all = append(all, rt.versions...)
	}
	clear(r.byName)
	r.mu.Unlock()
	for _, m := range all {
		m.inflight.Wait()
		m.Engine.Close()
	}
}

// loadedNames lists the available models for errors.
func (r *Repository) loadedNames() string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.loaded()
}
