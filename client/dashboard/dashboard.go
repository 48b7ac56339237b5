// Package dashboard is Atelier's store dashboard: a web page, served by the CLI's
// `atelier dashboard`, that shows a store's cameras live with the garments detected
// on them, what shoppers wear over time (per camera and store-wide), an alert feed,
// and the health of the connection to atelierd.
//
// It is a plain gRPC client of atelierd built on the public client library: each
// camera's frames (from a video file, a folder of images or an MJPEG file, read in a
// loop like a live camera) go through DetectStream; alerts come from WatchAlerts;
// health and models from the health service and ModelService. Every connection
// reconnects by itself with backoff. The page gets its updates as Server-Sent Events
// and each tile's newest frame as a JPEG, at most Config.ViewFPS times a second.
package dashboard

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/atelier-vision/atelier/client"
	"github.com/atelier-vision/atelier/client/palette"
	"github.com/atelier-vision/atelier/internal/certs"
	"github.com/atelier-vision/atelier/internal/filewatch"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// Dashboard is the state behind the page. Run it, and serve its Handler.
type Dashboard struct {
	cfg     Config
	client  *client.Client
	log     *slog.Logger
	cameras []*camera

	conn       conn
	feed       feed
	hub        hub
	frameBytes atomic.Uint64 // JPEG bytes sent to pages
	boot       int64         // when New ran, Unix nanoseconds: this process's id for the pages

	certs    *certs.Reloader // nil: plain HTTP
	users    *users          // nil: no login
	watchers []*filewatch.Watcher

	mu       sync.Mutex
	typeOf   map[string]string            // fine category seen -> its coarse garment type (learnType)
	boxTypes map[string]map[string]uint64 // categories palette.TypeOf lacks: their boxes by type
	history  []sample
}

// sample is every camera's tallies at one moment, for the charts.
type sample struct {
	T    int64                        `json:"t"` // Unix milliseconds
	Cams map[string]map[string]uint64 `json:"cams"`
}

// New returns a dashboard for cfg that talks to atelierd through c. cfg must pass
// Check, and its TLS and users files must load.
func New(c *client.Client, cfg Config) (*Dashboard, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	d := &Dashboard{cfg: cfg, client: c, log: cfg.Log, typeOf: map[string]string{}, boxTypes: map[string]map[string]uint64{}, boot: time.Now().UnixNano()}
	d.conn.up, d.conn.relisted = make(chan struct{}), make(chan struct{})
	d.hub.max = cfg.MaxPages
	if err := d.protect(); err != nil {
		return nil, err
	}
	if d.users != nil {
		d.users.limitLogins(cfg.LoginAttemptsPerMinute)
	}
	for _, cam := range cfg.Cameras {
		d.cameras = append(d.cameras, newCamera(d, cam, cfg.rulesFor(cam.Name)))
	}
	return d, nil
}

// rulesFor returns the API rules of one camera, with the defaults filled in.
func (c Config) rulesFor(camera string) []*pb.AlertRule {
	var out []*pb.AlertRule
	for _, r := range c.Rules {
		if r.Camera != "" && r.Camera != camera {
			continue
		}
		ar := &pb.AlertRule{Name: r.Name, Categories: r.Categories, MinScore: float32(c.AlertScore),
			MinConsecutiveFrames: c.AlertFrames, Cooldown: durationpb.New(c.Cooldown)}
		if r.MinScore != nil {
			ar.MinScore = float32(*r.MinScore)
		}
		if r.MinFrames > 0 {
			ar.MinConsecutiveFrames = r.MinFrames
		}
		if r.Cooldown != "" {
			d, _ := time.ParseDuration(r.Cooldown) // Check has parsed it
			ar.Cooldown = durationpb.New(d)
		}
		out = append(out, ar)
	}
	return out
}

// ClientOptions are the client options a dashboard wants on top of the caller's:
// no retries inside the client (the dashboard retries with its own backoff, and the
// page says so), and quick reconnection once atelierd is back.
func ClientOptions() []client.Option {
	return []client.Option{client.WithRetries(1), client.WithDialOptions(grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           grpcbackoff.Config{BaseDelay: 250 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
		MinConnectTimeout: 2 * time.Second,
	}))}
}

// Run streams every camera, watches alerts and health, feeds the pages and re-reads
// the TLS and users files when they change, until ctx is done.
func (d *Dashboard) Run(ctx context.Context) {
	if d.cfg.RulesProblem != "" {
		d.log.Error("bad rule file", "problem", d.cfg.RulesProblem)
	}
	var wg sync.WaitGroup
	goes := []func(context.Context){d.watchHealth, d.watchAlerts, d.tickState, d.tickFrames, d.watchFiles}
	for _, c := range d.cameras {
		goes = append(goes, c.readSource, c.stream)
	}
	for _, f := range goes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	wg.Wait()
}

func (d *Dashboard) camera(name string) *camera {
	for _, c := range d.cameras {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// learnType records a fine category seen in a box the detector called garmentType.
// A category of the embedded models has its fixed type (palette.TypeOf), whatever its
// boxes are called; another takes the type most of its boxes had so far (ties to
// the first in palette.Types order, then by name), not that of whichever came first.
func (d *Dashboard) learnType(label, garmentType string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t, ok := palette.TypeOf[label]; ok {
		d.typeOf[label] = t
		return
	}
	seen := d.boxTypes[label]
	if seen == nil {
		seen = map[string]uint64{}
		d.boxTypes[label] = seen
	}
	seen[garmentType]++
	best := ""
	for t, n := range seen {
		if best == "" || cmp.Or(cmp.Compare(seen[best], n), cmp.Compare(typeRank(t), typeRank(best)), cmp.Compare(t, best)) < 0 {
			best = t
		}
	}
	d.typeOf[label] = best
}

// typeRank is a garment type's place in palette.Types, after them if not there.
func typeRank(t string) int {
	if i := slices.Index(palette.Types, t); i >= 0 {
		return i
	}
	return len(palette.Types)
}

// share is one category's or garment type's count and share of the store's total.
type share struct {
	Name  string  `json:"name"`
	Count uint64  `json:"count"`
	Share float64 `json:"share"`
	Color string  `json:"color"`
}

// state is what the page gets every second.
type state struct {
	Conn    connStatus           `json:"conn"`
	Alerts  feedStatus           `json:"alerts"`
	Cameras map[string]camStatus `json:"cameras"`
	Sample  sample               `json:"sample"`
	Top     []share              `json:"top"`
	Types   []share              `json:"types"`
	// RuleProblems says which rules are off, as their categories are unknown to
	// atelierd's models (ruleProblems).
	RuleProblems []string          `json:"rule_problems,omitempty"`
	Colors       map[string]string `json:"colors"` // fine category -> CSS colour
	Order        []string          `json:"order"`  // fine categories by garment type, then name
	// Pages is how many pages are open, of at most MaxPages; PagesRefused counts
	// the pages turned away since the start because MaxPages were open.
	Pages        int    `json:"pages"`
	MaxPages     int    `json:"max_pages"`
	PagesRefused uint64 `json:"pages_refused"`
	// FrameBytes counts the JPEG bytes sent to pages since the start.
	FrameBytes uint64 `json:"frame_bytes"`
}

// snapshot builds the current state and, if record, adds its sample to the history.
func (d *Dashboard) snapshot(now time.Time, record bool) state {
	s := state{Conn: d.connStatus(now), Cameras: map[string]camStatus{},
		Sample: sample{T: now.UnixMilli(), Cams: map[string]map[string]uint64{}}, FrameBytes: d.frameBytes.Load()}
	s.Pages, s.MaxPages, s.PagesRefused = d.hub.stats()
	s.Alerts, _ = d.feedStatus()
	s.RuleProblems = d.ruleProblems()
	store := map[string]uint64{}
	for _, c := range d.cameras {
		st, counts := c.status(now)
		s.Cameras[c.Name] = st
		m := map[string]uint64{}
		for _, cc := range counts {
			m[cc.Label] = cc.Count
			store[cc.Label] += cc.Count
		}
		s.Sample.Cams[c.Name] = m
	}
	d.mu.Lock()
	colors := palette.Categories(d.typeOf)
	s.Order = categoryOrder(d.typeOf)
	byType := map[string]uint64{}
	for label, n := range store {
		t := d.typeOf[label]
		if t == "" {
			t = "other"
		}
		byType[t] += n
	}
	if record {
		d.history = append(d.history, s.Sample)
		if keep := int(d.cfg.History / time.Second); len(d.history) > keep {
			d.history = slices.Clone(d.history[len(d.history)-keep:])
		}
	}
	d.mu.Unlock()
	s.Colors = map[string]string{}
	for label, c := range colors {
		s.Colors[label] = palette.Hex(c)
	}
	s.Top = shares(store, func(label string) string { return s.Colors[label] })
	s.Types = shares(byType, func(t string) string { return palette.Hex(palette.Of(t)) })
	return s
}

// categoryOrder sorts categories by their garment type (palette.Types order), then name.
func categoryOrder(typeOf map[string]string) []string {
	rank := func(label string) int { return typeRank(typeOf[label]) }
	out := make([]string, 0, len(typeOf))
	for label := range typeOf {
		out = append(out, label)
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a, b)) })
	return out
}

// shares sorts counts, most first, with their shares of the total.
func shares(counts map[string]uint64, color func(string) string) []share {
	var total uint64
	out := make([]share, 0, len(counts))
	for name, n := range counts {
		total += n
		out = append(out, share{Name: name, Count: n, Color: color(name)})
	}
	for i := range out {
		out[i].Share = float64(out[i].Count) / float64(total)
	}
	slices.SortFunc(out, func(a, b share) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// tickState publishes the state every second.
func (d *Dashboard) tickState(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			d.hub.publish("state", d.snapshot(now, true))
		case <-ctx.Done():
			return
		}
	}
}

// tickFrames tells the pages about each camera's newest answered frame, at most
// ViewFPS times a second.
func (d *Dashboard) tickFrames(ctx context.Context) {
	t := time.NewTicker(time.Duration(float64(time.Second) / d.cfg.ViewFPS))
	defer t.Stop()
	last := map[string]uint64{}
	for {
		select {
		case <-t.C:
			views := map[string]view{}
			for _, c := range d.cameras {
				if v, ok := c.newest(last[c.Name]); ok {
					views[c.Name], last[c.Name] = v, v.ID
				}
			}
			if len(views) > 0 {
				d.hub.publish("frames", views)
			}
		case <-ctx.Done():
			return
		}
	}
}

// hello is what a page gets first: the set-up, the history and the feed.
type hello struct {
	Addr    string            `json:"addr"`
	Cameras []Camera          `json:"cameras"`
	Rules   []ruleView        `json:"rules"`
	Problem string            `json:"problem,omitempty"` // a set-up problem (the rule file)
	Types   map[string]string `json:"types"`             // coarse type -> CSS colour
	History []sample          `json:"history"`
	Feed    []*alert          `json:"feed"`
	State   state             `json:"state"`
	ViewFPS float64           `json:"view_fps"`
	Window  string            `json:"tally_window"`
	// HistoryS is how many seconds of samples the charts keep (--history).
	HistoryS float64 `json:"history_s"`
	// Boot tells one dashboard process from the next: a page that reconnects to a new
	// one starts afresh (alert numbers start again at 1, the cameras may differ).
	Boot int64 `json:"boot,string"`
}

// ruleView is one camera's rule, for the page.
type ruleView struct {
	Camera     string   `json:"camera"`
	Name       string   `json:"name"`
	Categories []string `json:"categories"`
	MinScore   float32  `json:"min_score"`
	MinFrames  uint32   `json:"min_frames"`
	Cooldown   string   `json:"cooldown"`
}

func (d *Dashboard) hello(now time.Time) hello {
	h := hello{Addr: d.cfg.Addr, Problem: d.cfg.RulesProblem, Types: map[string]string{}, ViewFPS: d.cfg.ViewFPS,
		Window: d.cfg.TallyWindow.String(), HistoryS: d.cfg.History.Seconds(), Boot: d.boot, State: d.snapshot(now, false)}
	for t, c := range palette.ByType {
		h.Types[t] = palette.Hex(c)
	}
	h.Types["other"] = palette.Hex(palette.Other)
	for _, c := range d.cameras {
		h.Cameras = append(h.Cameras, c.Camera)
		for _, r := range c.rules {
			h.Rules = append(h.Rules, ruleView{Camera: c.Name, Name: r.Name, Categories: r.Categories, MinScore: r.MinScore,
				MinFrames: r.MinConsecutiveFrames, Cooldown: r.Cooldown.AsDuration().String()})
		}
	}
	d.mu.Lock()
	h.History = slices.Clone(d.history)
	d.mu.Unlock()
	_, h.Feed = d.feedStatus()
	return h
}

// String describes the dashboard for the start-up log.
func (d *Dashboard) String() string {
	return fmt.Sprintf("%d cameras at %.3g frames/s, %d rules in all", len(d.cameras), d.cfg.FPS, len(d.cfg.Rules))
}
