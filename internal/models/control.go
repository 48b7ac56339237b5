package models

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/atelier-vision/atelier/internal/metrics"
)

// Status reports every model's versions, newest first; a non-empty name reports that
// model only (NotFound if the repository has never seen it).
func (m *Manager) Status(names ...string) []ModelStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ModelStatus
	for name, mm := range m.models {
		if len(names) > 0 && names[0] != name {
			continue
		}
		st := ModelStatus{Name: name, Role: mm.role, Policy: m.cfg.Model(name).Policy, Labels: m.repo.Labels(name)}
		for n, v := range mm.versions {
			if v.state == 0 {
				continue
			}
			st.Versions = append(st.Versions, VersionStatus{Version: n, State: v.state, Err: v.err, StateTime: v.stateTime,
				LoadStart: v.loadStart, AvailableTime: v.availT, Pinned: mm.pinned[n]})
		}
		if len(st.Versions) == 0 {
			continue
		}
		sort.Slice(st.Versions, func(i, j int) bool { return st.Versions[i].Version > st.Versions[j].Version })
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// StatusOf reports one model, or NotFound naming the models the repository knows.
func (m *Manager) StatusOf(name string) (ModelStatus, error) {
	if st := m.Status(name); len(st) == 1 {
		return st[0], nil
	}
	return ModelStatus{}, fmt.Errorf("%w: no model named %q (known: %s)", ErrNotFound, name, m.known())
}

func (m *Manager) known() string {
	var parts []string
	for _, st := range m.Status() {
		var vs []string
		for _, v := range st.Versions {
			vs = append(vs, fmt.Sprintf("%d %s", v.Version, v.State))
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", st.Name, strings.Join(vs, ", ")))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// LoadModel pins a version: it is loaded and kept whatever the policy says, until
// UnloadModel. It returns once the version is AVAILABLE or FAILED.
func (m *Manager) LoadModel(ctx context.Context, name string, n int64) (VersionStatus, error) {
	m.mu.Lock()
	mm := m.models[name]
	var v *version
	if mm != nil {
		v = mm.versions[n]
	}
	if v == nil || !v.onDisk || v.fp == "" {
		m.mu.Unlock()
		return VersionStatus{}, fmt.Errorf("%w: %s/%s/%d holds no SavedModel (saved_model.pb and variables/); versions on disk: %s",
			ErrNotFound, m.opts.Root, name, n, m.onDisk(name))
	}
	mm.pinned[n] = true
	delete(mm.evicted, n)
	v.ready = true
	if v.state == StateFailed {
		v.failedFP = "" // an explicit load retries a failed version
	}
	m.reconcile()
	m.mu.Unlock()
	for {
		m.mu.Lock()
		st, ch := VersionStatus{Version: n, State: v.state, Err: v.err, StateTime: v.stateTime, LoadStart: v.loadStart,
			AvailableTime: v.availT, Pinned: true}, m.changed
		m.mu.Unlock()
		if st.State == StateAvailable || st.State == StateFailed {
			return st, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
}

// OnDisk lists every model's complete version folders (saved_model.pb and
// variables/), newest first, whether the lifecycle has them loaded or not.
func (m *Manager) OnDisk() map[string][]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]int64{}
	for name, mm := range m.models {
		if vs := diskVersions(mm); len(vs) > 0 {
			out[name] = vs
		}
	}
	return out
}

// diskVersions lists a model's complete version folders, newest first; the caller
// holds m.mu.
func diskVersions(mm *managed) []int64 {
	var vs []int64
	for n, v := range mm.versions {
		if v.onDisk && v.fp != "" {
			vs = append(vs, n)
		}
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i] > vs[j] })
	return vs
}

// onDisk lists a model's version folders for errors; the caller holds m.mu.
func (m *Manager) onDisk(name string) string {
	var vs []int64
	if mm := m.models[name]; mm != nil {
		vs = diskVersions(mm)
	}
	if len(vs) == 0 {
		return "none"
	}
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.FormatInt(v, 10)
	}
	return strings.Join(parts, ",")
}

// UnloadModel evicts an available version until LoadModel asks for it again. Its
// in-flight calls finish on it; a labelled version is refused.
func (m *Manager) UnloadModel(name string, n int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mm := m.models[name]
	if mm == nil || mm.versions[n] == nil || mm.versions[n].state != StateAvailable {
		return fmt.Errorf("%w: version %d of %q is not available (known: %s)", ErrNotFound, n, name, m.knownLocked())
	}
	for l, v := range m.repo.Labels(name) {
		if v == n {
			return fmt.Errorf("%w: label %q names version %d of %q; move or remove the label first", ErrLabelled, l, n, name)
		}
	}
	delete(mm.pinned, n)
	mm.evicted[n] = true
	m.reconcile()
	return nil
}

// knownLocked is known for a caller holding m.mu.
func (m *Manager) knownLocked() string {
	m.mu.Unlock()
	defer m.mu.Lock()
	return m.known()
}

// SetLabels points labels of a model at available versions (version 0 removes a
// label) and returns the model's labels. The labels last until the config is re-read.
func (m *Manager) SetLabels(name string, labels map[string]int64) (map[string]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mm := m.models[name]
	if mm == nil {
		return nil, fmt.Errorf("%w: no model named %q (available: %s)", ErrNotFound, name, m.repo.loadedNames())
	}
	if err := m.repo.setLabels(name, labels, false); err != nil {
		return nil, err
	}
	for l, v := range labels {
		if v == 0 {
			delete(mm.labels, l)
		} else {
			mm.labels[l] = v
		}
	}
	m.reconcile()
	return m.repo.Labels(name), nil
}

// WriteMetrics writes the lifecycle metrics in Prometheus' text format: versions per
// state, each available version's load time and load failures per model.
func (m *Manager) WriteMetrics(w io.Writer) {
	status := m.Status()
	fmt.Fprintln(w, "# HELP atelier_model_versions Versions of each model in each lifecycle state.")
	fmt.Fprintln(w, "# TYPE atelier_model_versions gauge")
	for _, st := range status {
		count := map[State]int{}
		for _, v := range st.Versions {
			count[v.State]++
		}
		for _, s := range []State{StateLoading, StateWarming, StateAvailable, StateUnloading, StateFailed} {
			fmt.Fprintf(w, "atelier_model_versions{model=%s,state=%q} %d\n", metrics.Label(st.Name), s, count[s])
		}
	}
	fmt.Fprintln(w, "# HELP atelier_model_load_seconds Time an available version took from the start of its load to AVAILABLE, warm-up included.")
	fmt.Fprintln(w, "# TYPE atelier_model_load_seconds gauge")
	for _, st := range status {
		for _, v := range st.Versions {
			if v.State == StateAvailable && v.AvailableTime.After(v.LoadStart) && !v.LoadStart.IsZero() {
				fmt.Fprintf(w, "atelier_model_load_seconds{model=%s,version=\"%d\"} %g\n", metrics.Label(st.Name), v.Version, v.AvailableTime.Sub(v.LoadStart).Seconds())
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintln(w, "# HELP atelier_model_load_failures_total Loads or warm-ups of a model's versions that failed.")
	fmt.Fprintln(w, "# TYPE atelier_model_load_failures_total counter")
	names := make([]string, 0, len(m.failures))
	for n := range m.failures {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "atelier_model_load_failures_total{model=%s} %d\n", metrics.Label(n), m.failures[n])
	}
}
