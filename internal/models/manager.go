package models

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/precision"
)

// ErrLabelled marks an UnloadModel of a version that a label names.
var ErrLabelled = errkind.New(errkind.FailedPrecondition, "version is labelled")

// ErrNoModels marks a repository in which no version became available at start-up.
var ErrNoModels = errors.New("no model is available")

// Warmer runs a freshly loaded version before it takes traffic; an error fails it.
type Warmer func(ctx context.Context, m *Model) error

// ManagerOptions configures a Manager.
type ManagerOptions struct {
	// Root is the model folder: <name>/<version>/saved_model.pb.
	Root string
	// ConfigPath is the --model-config file; empty: every model gets DefaultPolicy.
	ConfigPath string
	Load       Loader
	// Warm warms each version up; nil skips warm-up.
	Warm Warmer
	// Settle is how long an explicit rescan (SIGHUP, ReloadRepository) waits before
	// its second look at a new folder; default 250ms.
	Settle time.Duration
	// AfterUnload runs after an unloaded version's memory has been collected, to hand
	// it back to the operating system (tf.TrimHeap); nil does nothing more.
	AfterUnload func()
	Log         *slog.Logger
}

// Manager is the model lifecycle, after tensorflow/serving's core: each scan of the
// folder and the config give the aspired versions of every model (its policy's
// choice of the complete versions, plus pinned and labelled ones); the manager loads
// toward them one at a time in the background, warms each new version up, makes it
// routable, and only then retires the versions no longer aspired (availability
// preserving). A retired version leaves routing at once and is closed once its
// in-flight calls are done.
type Manager struct {
	opts ManagerOptions
	repo *Repository

	mu       sync.Mutex
	cfg      Config
	models   map[string]*managed
	queue    []*version
	wake     chan struct{}
	changed  chan struct{} // closed and replaced at every state change
	failures map[string]int64
	closed   bool
	stop     chan struct{}
	// skipped are the folders the last scan could not take, and why; each is logged
	// when it first appears (or its reason changes), not at every poll.
	skipped map[string]string
	// pollErr is the last poll's scan error ("" for none); only Poll's goroutine uses it.
	pollErr string
	// ctx bounds the warm-ups; Close cancels it, so shutdown does not wait for one.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// managed is one model's versions and hand-made choices.
type managed struct {
	name     string
	role     Role
	versions map[int64]*version
	pinned   map[int64]bool
	evicted  map[int64]bool
	labels   map[string]int64 // wanted labels: the config's, then SetVersionLabels'
}

// version is one version folder and its lifecycle.
type version struct {
	name    string
	v       int64
	dir     string
	onDisk  bool
	fp      string // fingerprint at the last scan
	ready   bool   // complete: fingerprint unchanged over one scan, or loaded before
	aspired bool

	state                        State // 0: on disk, not in the lifecycle
	err                          error
	failedFP                     string
	stateTime, loadStart, availT time.Time
	model                        *Model
	// setting is the precision setting model was loaded with; reloading marks an
	// AVAILABLE version queued to be loaded again because its setting changed.
	setting   precision.Setting
	reloading bool
}

// NewManager reads the config file and returns a manager with an empty repository;
// Start loads the models.
func NewManager(opts ManagerOptions) (*Manager, error) {
	if opts.Settle == 0 {
		opts.Settle = 250 * time.Millisecond
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	cfg, err := ReadConfig(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{opts: opts, repo: newRepository(), cfg: cfg, models: map[string]*managed{},
		wake: make(chan struct{}, 1), changed: make(chan struct{}), failures: map[string]int64{},
		stop: make(chan struct{}), ctx: ctx, cancel: cancel}, nil
}

// Repository returns the routing table the request paths use.
func (m *Manager) Repository() *Repository { return m.repo }

// Start loads every complete version the policies want, waits for the loads to end,
// and applies the config's labels. It fails when no version at all is available or
// a label names a version that is not. A folder counts as complete as at an explicit
// rescan: unchanged over two looks, Settle apart, so a copy in progress at boot is not
// loaded half-way (it is, by the polls, once it stands still).
func (m *Manager) Start(ctx context.Context) error {
	m.wg.Add(1)
	go m.loader()
	if err := m.scanSettled(ctx); err != nil {
		return err
	}
	if err := m.WaitIdle(ctx); err != nil {
		return err
	}
	if len(m.repo.Names()) == 0 {
		return fmt.Errorf("%w: model repository %s holds no loadable model (want <name>/<version>/saved_model.pb and variables/; run `make models`)%s",
			ErrNoModels, m.opts.Root, m.failureSummary())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applyLabels(m.cfg)
}

func (m *Manager) failureSummary() string {
	var s string
	for _, st := range m.Status() {
		for _, v := range st.Versions {
			if v.State == StateFailed {
				s += fmt.Sprintf("; %s:%d failed: %v", st.Name, v.Version, v.Err)
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mm := range m.models {
		for n, v := range mm.versions {
			if v.onDisk && v.fp != "" && !v.ready {
				s += fmt.Sprintf("; %s:%d was still changing over %v (a copy in progress? copy to a hidden folder, then rename)", mm.name, n, m.opts.Settle)
			}
		}
	}
	return s
}

// Poll rescans the folder every interval until ctx is done.
func (m *Manager) Poll(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.stop:
			return
		case <-t.C:
			m.poll()
		}
	}
}

// poll is one poll's scan. A scan error (the folder gone, a volume unmounted) changes
// nothing: what is loaded serves on. It is logged when it begins or changes, and the
// end of it once, not at every interval.
func (m *Manager) poll() {
	_, err := m.scan()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	switch {
	case msg == m.pollErr:
	case err != nil:
		m.opts.Log.Warn("model repository scan", "err", err)
	default:
		m.opts.Log.Info("model repository scan works again", "dir", m.opts.Root)
	}
	m.pollErr = msg
}

// Reload re-reads the config file and rescans the folder at once, looking twice
// (Settle apart) at folders that are new. A config with an error is refused and the
// old one stays. With wait, it returns once every load it started has ended.
func (m *Manager) Reload(ctx context.Context, wait bool) error {
	cfg, err := ReadConfig(m.opts.ConfigPath)
	if err != nil {
		return err
	}
	// Versions leave routing only under m.mu (retire), so checking the labels and
	// switching to the new config under it is one step: a labelled version cannot go
	// between the check and the switch, and a refused config changes nothing.
	m.mu.Lock()
	for name, mc := range cfg.Models {
		if err := m.repo.CheckLabels(name, mc.Labels); err != nil {
			m.mu.Unlock()
			return fmt.Errorf("%w: %s: %v", ErrConfig, m.opts.ConfigPath, err)
		}
	}
	m.cfg = cfg
	for _, mm := range m.models {
		mm.labels = cloneLabels(cfg.Model(mm.name).Labels)
		m.queueReloads(mm, cfg.Model(mm.name).Precision)
	}
	err = m.applyLabels(cfg)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	if err := m.scanSettled(ctx); err != nil {
		return err
	}
	if wait {
		return m.WaitIdle(ctx)
	}
	return nil
}

// scanSettled rescans the folder and, if it saw folders that are new or changed, looks
// again Settle later: one that stood still in between is loaded now, not a poll later;
// one still changing is left to the polls.
func (m *Manager) scanSettled(ctx context.Context) error {
	pending, err := m.scan()
	if err != nil || !pending {
		return err
	}
	select {
	case <-time.After(m.opts.Settle):
	case <-ctx.Done():
		return ctx.Err()
	}
	_, err = m.scan()
	return err
}

// applyLabels publishes the config's labels (replacing each model's labels); the
// caller holds m.mu.
func (m *Manager) applyLabels(cfg Config) error {
	for _, name := range m.repo.Names() {
		if err := m.repo.setLabels(name, cfg.Model(name).Labels, true); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrConfig, m.opts.ConfigPath, err)
		}
	}
	for name, mc := range cfg.Models {
		if err := m.repo.setLabels(name, mc.Labels, true); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrConfig, m.opts.ConfigPath, err)
		}
	}
	return nil
}

func cloneLabels(l map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range l {
		out[k] = v
	}
	return out
}

// scan reads the folder and reconciles. A folder is complete once its fingerprint has
// not changed since the previous scan, at start-up too. pending reports folders seen
// changing.
func (m *Manager) scan() (pending bool, err error) {
	res, err := scanRoot(m.opts.Root)
	if err != nil {
		return false, err
	}
	found := res.models
	m.mu.Lock()
	defer m.mu.Unlock()
	// Say once what cannot be taken, not at every poll: a folder is named again only if
	// it has been fine in between, or for another reason.
	skipped := make([]string, 0, len(res.skipped))
	for dir := range res.skipped {
		skipped = append(skipped, dir)
	}
	sort.Strings(skipped)
	for _, dir := range skipped {
		if why := res.skipped[dir]; m.skipped[dir] != why {
			m.opts.Log.Warn("model folder skipped", "dir", dir, "why", why)
		}
	}
	m.skipped = res.skipped
	for name, vs := range found {
		mm := m.models[name]
		if mm == nil {
			mm = &managed{name: name, versions: map[int64]*version{}, pinned: map[int64]bool{}, evicted: map[int64]bool{},
				labels: cloneLabels(m.cfg.Model(name).Labels)}
			m.models[name] = mm
		}
		for n, d := range vs {
			v := mm.versions[n]
			if v == nil {
				v = &version{name: name, v: n}
				mm.versions[n] = v
			}
			if d.unknown {
				// There but unreadable, or spelled twice: leave it as it was.
				v.onDisk = true
				continue
			}
			stable := d.fp != "" && d.fp == v.fp
			v.ready = stable || (v.state != 0 && v.state != StateFailed && d.fp != "")
			if d.fp != "" && !stable && v.state == 0 || d.fp != v.fp && v.state == StateFailed {
				pending = true
			}
			v.dir, v.fp, v.onDisk = d.dir, d.fp, true
		}
		for n, v := range mm.versions {
			if _, ok := vs[n]; !ok {
				v.onDisk = false
			}
		}
	}
	for name, mm := range m.models {
		// A model folder that is there but could not be listed keeps its versions.
		if _, ok := found[name]; !ok && !res.unreadable[name] {
			for _, v := range mm.versions {
				v.onDisk = false
			}
		}
	}
	m.reconcile()
	return pending, nil
}

// reconcile works out every model's aspired versions and moves toward them; the
// caller holds m.mu.
func (m *Manager) reconcile() {
	if m.closed {
		// Close closes every routable version once its calls are done (repo.Close). A
		// retire now (an UnloadModel, a rescan or a label change that came after Close)
		// would start an unload goroutine that Close's wg.Wait may already have passed,
		// and close the engine a second time.
		return
	}
	for name, mm := range m.models {
		policy := m.cfg.Model(name).Policy
		var cands []int64
		for n, v := range mm.versions {
			retry := v.state == StateFailed && v.fp != v.failedFP
			if v.onDisk && v.ready && !mm.evicted[n] && (v.state != StateFailed || retry) {
				cands = append(cands, n)
			}
		}
		sort.Slice(cands, func(i, j int) bool { return cands[i] > cands[j] })
		want := map[int64]bool{}
		for _, n := range policy.choose(cands) {
			want[n] = true
		}
		for _, n := range cands {
			if mm.pinned[n] || slices.Contains(labelVersions(mm.labels), n) {
				want[n] = true
			}
		}
		// settled: no version the policy wants is still on its way; served: one of
		// them is AVAILABLE.
		settled, served := true, false
		for n, v := range mm.versions {
			v.aspired = want[n]
			if v.aspired && (v.state == 0 || v.state == StateFailed) {
				m.setState(v, StateLoading, nil)
				v.loadStart = v.stateTime
				m.queue = append(m.queue, v)
				select {
				case m.wake <- struct{}{}:
				default:
				}
			}
			if v.aspired && (v.state == StateLoading || v.state == StateWarming) {
				settled = false
			}
			served = served || v.aspired && v.state == StateAvailable
		}
		for n, v := range mm.versions {
			// A version the policy no longer wants goes once a wanted one serves in its
			// place. A policy that picks nothing loadable (`specific 9` with no folder 9,
			// or 9 FAILED) leaves the serving versions alone, so a typo in the config never
			// takes a model down; a folder removed from disk or a version unloaded by
			// hand still goes.
			if v.state == StateAvailable && !v.aspired && (settled && (served || !v.onDisk) || mm.evicted[n]) {
				m.retire(v)
			}
			if !v.onDisk && (v.state == 0 || v.state == StateFailed) {
				delete(mm.versions, n)
				m.notify()
			}
		}
		if len(mm.versions) == 0 {
			delete(m.models, name)
		}
	}
}

func labelVersions(labels map[string]int64) []int64 {
	var out []int64
	for _, v := range labels {
		out = append(out, v)
	}
	return out
}

// setState moves v to s; the caller holds m.mu.
func (m *Manager) setState(v *version, s State, err error) {
	v.state, v.err, v.stateTime = s, err, time.Now()
	m.notify()
}

func (m *Manager) notify() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// retire takes v out of routing now and closes it once its calls are done; the
// caller holds m.mu.
func (m *Manager) retire(v *version) {
	m.setState(v, StateUnloading, nil)
	model := v.model
	m.repo.retire(model)
	m.opts.Log.Info("model version unloading", "model", v.name, "version", v.v)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		model.inflight.Wait()
		model.Engine.Close()
		m.mu.Lock()
		v.model = nil
		m.setState(v, 0, nil)
		m.opts.Log.Info("model version unloaded", "model", v.name, "version", v.v)
		m.reconcile()
		m.mu.Unlock()
		// The TF bindings free a graph only in its finalizer; collecting now gives an
		// unloaded version's memory back at once rather than at some later GC.
		model = nil
		runtime.GC()
		if m.opts.AfterUnload != nil {
			m.opts.AfterUnload()
		}
	}()
}

// queueReloads queues every serving version of mm whose precision setting is not
// setting, to be loaded again with it and swapped in (reloadOne); the caller holds
// m.mu. The version goes on serving as it is until then.
func (m *Manager) queueReloads(mm *managed, setting precision.Setting) {
	for _, v := range mm.versions {
		if v.state == StateAvailable && v.setting != setting && !v.reloading {
			v.reloading = true
			m.queue = append(m.queue, v)
		}
	}
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// loader loads the queued versions one at a time until Close.
func (m *Manager) loader() {
	defer m.wg.Done()
	for {
		m.mu.Lock()
		for len(m.queue) == 0 && !m.closed {
			m.mu.Unlock()
			select {
			case <-m.stop:
				return
			case <-m.wake:
			}
			m.mu.Lock()
		}
		if m.closed {
			// At shutdown the queued versions would only be loaded, warmed up and
			// closed again: leave them.
			m.mu.Unlock()
			return
		}
		v := m.queue[0]
		m.queue = m.queue[1:]
		if v.reloading {
			spec, dir, setting, role := Spec{Name: v.name, Version: v.v}, v.dir, m.cfg.Model(v.name).Precision, v.model.Role
			m.mu.Unlock()
			m.reloadOne(v, spec, dir, setting, role)
			continue
		}
		if !v.aspired || v.state != StateLoading {
			if v.state == StateLoading {
				m.setState(v, 0, nil)
			}
			m.reconcile()
			m.mu.Unlock()
			continue
		}
		spec, dir, fp := Spec{Name: v.name, Version: v.v}, v.dir, v.fp
		setting := m.cfg.Model(v.name).Precision
		m.mu.Unlock()
		m.loadOne(v, spec, dir, fp, setting)
	}
}

// loadOne loads, warms and publishes one version, or marks it FAILED.
func (m *Manager) loadOne(v *version, spec Spec, dir, fp string, setting precision.Setting) {
	start := time.Now()
	model, err := m.load(spec, dir, setting)
	if err == nil {
		m.mu.Lock()
		if role := m.models[spec.Name].role; role != RoleUnknown && role != model.Role {
			err = fmt.Errorf("it is a %s but the model's other versions are %ss", model.Role, role)
		} else {
			m.setState(v, StateWarming, nil)
		}
		m.mu.Unlock()
	}
	if err == nil {
		err = m.warm(model)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		// Close cut the warm-up short (or came while it ran): the version never
		// failed, so no FAILED state, log line or failure count.
		if model != nil {
			model.Engine.Close()
		}
		m.setState(v, 0, nil)
		return
	case err != nil:
		if model != nil {
			model.Engine.Close()
		}
		v.failedFP = fp
		m.failures[spec.Name]++
		m.setState(v, StateFailed, err)
		m.opts.Log.Error("model version failed", append([]any{"model", spec.Name, "version", spec.Version, "dir", dir, "err", err}, panicStack(err)...)...)
	case !v.aspired:
		model.Engine.Close()
		m.setState(v, 0, nil)
	default:
		v.model, v.setting = model, setting
		v.availT = time.Now()
		m.models[spec.Name].role = model.Role
		m.repo.publish(model)
		m.setState(v, StateAvailable, nil)
		m.opts.Log.Info("model version available", "model", spec.Name, "version", spec.Version, "role", model.Role.String(),
			"labels", len(model.Labels), "took", time.Since(start).Round(time.Millisecond), "dir", dir)
	}
	m.reconcile()
}

// load opens one version folder with the Loader. A panic in it (a bug in the loader or
// in TensorFlow's bindings, on a model nobody tried) is the version's error: it runs on
// the one loader goroutine, and would otherwise end the server.
func (m *Manager) load(spec Spec, dir string, setting precision.Setting) (model *Model, err error) {
	defer errkind.Recover(&err)
	return loadVersion(spec, dir, setting, m.opts.Load)
}

// warm runs the warm-up on a loaded model; Close cuts it short. A panic is its error,
// as in load.
func (m *Manager) warm(model *Model) (err error) {
	if m.opts.Warm == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(m.ctx, 10*time.Minute)
	defer cancel()
	defer errkind.Recover(&err)
	return m.opts.Warm(ctx, model)
}

// panicStack is the log attribute of a recovered panic's stack; none for other errors.
func panicStack(err error) []any {
	var p *errkind.Panic
	if errors.As(err, &p) {
		return []any{"stack", string(p.Stack)}
	}
	return nil
}

// reloadOne loads a serving version again with a new precision setting, warms it up
// and swaps it in for the loaded one, which drains and closes as a retired version
// does. Until the swap the loaded one serves; if the new load fails it serves on, and
// the failure is logged, not made the version's state.
func (m *Manager) reloadOne(v *version, spec Spec, dir string, setting precision.Setting, role Role) {
	start := time.Now()
	model, err := m.load(spec, dir, setting)
	if err == nil && model.Role != role {
		err = fmt.Errorf("it is now a %s, not a %s", model.Role, role)
	}
	if err == nil {
		err = m.warm(model)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v.reloading = false
	defer m.notify()
	switch {
	case m.closed || v.state != StateAvailable:
		// Shut down, or the version left while it loaded again: nothing to swap.
		if model != nil {
			model.Engine.Close()
		}
	case err != nil:
		if model != nil {
			model.Engine.Close()
		}
		v.setting = setting // not again at every reload; a new version or a restart retries
		m.opts.Log.Error("model version reload failed; the loaded one serves on", append([]any{"model", spec.Name, "version", spec.Version,
			"precision", setting, "dir", dir, "err", err}, panicStack(err)...)...)
	default:
		old := v.model
		v.model, v.setting = model, setting
		m.repo.replace(old, model)
		m.opts.Log.Info("model version reloaded", "model", spec.Name, "version", spec.Version, "precision", model.Precision,
			"was", old.Precision, "took", time.Since(start).Round(time.Millisecond))
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			old.inflight.Wait()
			old.Engine.Close()
			old = nil
			runtime.GC() // as retire: give the replaced graph's memory back now
			if m.opts.AfterUnload != nil {
				m.opts.AfterUnload()
			}
		}()
	}
}

// WaitIdle waits until no version is loading or warming.
func (m *Manager) WaitIdle(ctx context.Context) error {
	for {
		m.mu.Lock()
		busy := len(m.queue) > 0
		for _, mm := range m.models {
			for _, v := range mm.versions {
				busy = busy || v.state == StateLoading || v.state == StateWarming || v.reloading
			}
		}
		ch := m.changed
		m.mu.Unlock()
		if !busy {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close stops polling and loading, then closes every version once its calls are done.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	close(m.stop)
	m.cancel()
	m.mu.Unlock()
	m.wg.Wait()
	m.repo.Close()
}
