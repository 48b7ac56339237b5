package dashboard

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Connection states, as the page shows them.
const (
	connConnecting   = "connecting"
	connConnected    = "connected"
	connReconnecting = "reconnecting"
)

// conn is the dashboard's view of its connection to atelierd.
type conn struct {
	mu      sync.Mutex
	state   string
	problem string // the last failure, for a person
	attempt int
	retryAt time.Time
	since   time.Time
	health  string
	models  []modelInfo
	up      chan struct{} // closed while connected; a new one when the connection is lost
	// labels are the labels alert rules may name (ruleLabels), nil when not known;
	// listed says the models have been asked for once; relisted is closed (and
	// replaced) when that first happens and whenever the labels change.
	labels   []string
	listed   bool
	relisted chan struct{}
}

// whenUp returns a channel that is closed once atelierd is (or is again) reachable.
func (d *Dashboard) whenUp() <-chan struct{} {
	d.conn.mu.Lock()
	defer d.conn.mu.Unlock()
	return d.conn.up
}

// retryWait sleeps before a stream's next attempt: wait, or less if atelierd comes
// back meanwhile (a stream that failed while the server was reachable waits in full).
func (d *Dashboard) retryWait(ctx context.Context, wait time.Duration) {
	up := d.whenUp()
	select {
	case <-up:
		up = nil // it is up already: no early wake-up
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-up:
	case <-ctx.Done():
	}
}

// modelInfo is one loaded model, for the page.
type modelInfo struct {
	Name     string  `json:"name"`
	Role     string  `json:"role"`
	Versions []int64 `json:"versions"`
	Labels   int     `json:"labels"`
}

// connStatus is the connection as the page shows it.
type connStatus struct {
	State    string      `json:"state"`
	Problem  string      `json:"problem,omitempty"`
	Attempt  int         `json:"attempt,omitempty"`
	RetryInS float64     `json:"retry_in_s,omitempty"`
	Since    time.Time   `json:"since"`
	Health   string      `json:"health"`
	Channel  string      `json:"channel"`
	Models   []modelInfo `json:"models"`
}

// healthEvery is how often a connected dashboard checks the server's health.
const healthEvery = 2 * time.Second

// modelsEvery is how often a connected dashboard lists the models again (they may be
// reloaded without a reconnection); a variable so that tests can shorten it.
var modelsEvery = 30 * time.Second

// watchHealth checks the server's health and, on each (re)connection and every
// modelsEvery, its models, backing off while it cannot reach it.
func (d *Dashboard) watchHealth(ctx context.Context) {
	b := newBackoff(250*time.Millisecond, 2*time.Second)
	var listed time.Time
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := d.client.Health(cctx, "")
		cancel()
		if ctx.Err() != nil {
			return
		}
		c := &d.conn
		if err == nil {
			c.mu.Lock()
			was := c.state
			c.health, c.problem, c.attempt = st.String(), "", 0
			if was != connConnected {
				c.state, c.since = connConnected, time.Now()
				close(c.up)
			}
			c.mu.Unlock()
			b.reset()
			if was != connConnected {
				d.log.Info("connected to atelierd", "addr", d.cfg.Addr, "health", st.String())
			}
			if was != connConnected || time.Since(listed) >= modelsEvery {
				d.refreshModels(ctx)
				listed = time.Now()
			}
			sleep(ctx, min(healthEvery, modelsEvery))
			continue
		}
		wait := b.next()
		msg := unreachable(d.cfg.Addr, err)
		c.mu.Lock()
		was := c.state
		if was == connConnected {
			c.state, c.since, c.up = connReconnecting, time.Now(), make(chan struct{})
		} else if c.state == "" {
			c.state, c.since = connConnecting, time.Now()
		}
		c.health, c.problem, c.attempt, c.retryAt = healthpb.HealthCheckResponse_UNKNOWN.String(), msg, b.attempt, time.Now().Add(wait)
		c.mu.Unlock()
		d.log.Warn("atelierd unreachable", "state", c.state, "err", msg, "attempt", b.attempt, "retry_in", wait.Round(time.Millisecond))
		sleep(ctx, wait)
	}
}

// unreachable says why the server could not be reached, naming its address.
func unreachable(addr string, err error) string {
	msg := describe(err)
	if i := strings.LastIndex(msg, "dial tcp "); i >= 0 { // the dialer's own words are the useful part
		msg = "UNAVAILABLE: " + strings.TrimRight(msg[i:], `"`)
	}
	return "cannot reach atelierd at " + addr + ": " + msg
}

// refreshModels lists the loaded models, and the labels rules may name; it wakes the
// streams waiting for them (modelLabels) the first time, whatever the outcome, and
// whenever the labels change.
func (d *Dashboard) refreshModels(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	ms, err := d.client.ListModels(cctx)
	cancel()
	var out []modelInfo
	for _, m := range ms {
		mi := modelInfo{Name: m.Name, Role: strings.ToLower(strings.TrimPrefix(m.Role.String(), "MODEL_ROLE_"))}
		for _, v := range m.Versions {
			mi.Versions = append(mi.Versions, v.Version)
			mi.Labels = max(mi.Labels, len(v.Labels))
		}
		out = append(out, mi)
	}
	c := &d.conn
	c.mu.Lock()
	labels := c.labels
	if err == nil {
		c.models, labels = out, ruleLabels(ms)
	}
	changed := !c.listed || !slices.Equal(labels, c.labels)
	if changed {
		c.labels, c.listed = labels, true
		close(c.relisted)
		c.relisted = make(chan struct{})
	}
	c.mu.Unlock()
	if err != nil {
		d.log.Warn("listing models", "err", describe(err))
		return
	}
	if changed {
		d.log.Info("models loaded on atelierd", "count", len(out))
		for _, p := range d.ruleProblems() {
			d.log.Error("alert rule off", "problem", p)
		}
	}
}

func (d *Dashboard) connStatus(now time.Time) connStatus {
	c := &d.conn
	c.mu.Lock()
	defer c.mu.Unlock()
	s := connStatus{State: c.state, Problem: c.problem, Attempt: c.attempt, Since: c.since, Health: c.health,
		Channel: d.client.Conn().GetState().String(), Models: c.models}
	if s.State == "" {
		s.State = connConnecting
	}
	if c.state != connConnected && c.retryAt.After(now) {
		s.RetryInS = c.retryAt.Sub(now).Seconds()
	}
	return s
}
