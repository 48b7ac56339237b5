// Package admission decides whether a call may start: a token bucket per caller (a
// token's name, or the peer's address without auth) and a cap on each caller's open
// streams. It holds no goroutines; idle buckets are dropped as callers come and go.
package admission

import (
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"
)

// Config sets the limits; a zero field turns its limit off.
type Config struct {
	// Rate is the calls per second one caller may start on average.
	Rate float64
	// Burst is how many calls a caller may start at once (default: max(1, Rate)).
	Burst int
	// MaxStreams is the most streams one caller may have open at once.
	MaxStreams int
}

// Validate checks the ranges.
func (c Config) Validate() error {
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) || c.Burst < 0 || c.MaxStreams < 0 {
		return fmt.Errorf("admission: rate, burst and max streams must be >= 0, got %+v", c)
	}
	return nil
}

// CallerKey is the part of a peer's address (host, without its port) that names one
// caller: the whole address for IPv4, the /64 for IPv6, since one host commonly holds a
// whole /64 and could otherwise take a fresh address, and a fresh bucket, for every
// call. Anything that is not an IP address is returned as it is.
func CallerKey(host string) string {
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is6() || a.Is4In6() {
		return host
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// maxCallers is the number of buckets past which idle (full) ones are dropped. When
// most are busy, the next sweep waits until the map has doubled, so that a flood of
// new callers costs each call O(1) amortized instead of a walk of every bucket.
const maxCallers = 100_000

type bucket struct {
	tokens  float64
	last    time.Time
	streams int
}

// Controller applies Config to callers.
type Controller struct {
	cfg     Config
	now     func() time.Time
	mu      sync.Mutex
	callers map[string]*bucket
	// sweepAt is the size of callers that triggers the next sweep; sweeps counts them.
	sweepAt, sweeps int
}

// New returns a controller; with a zero Config it admits everything.
func New(cfg Config) *Controller {
	if cfg.Rate > 0 && cfg.Burst == 0 {
		cfg.Burst = max(1, int(math.Ceil(cfg.Rate)))
	}
	return &Controller{cfg: cfg, now: time.Now, callers: map[string]*bucket{}, sweepAt: maxCallers}
}

// Config returns the controller's limits, with defaults filled in.
func (c *Controller) Config() Config { return c.cfg }

func (c *Controller) get(key string, now time.Time) *bucket {
	b, ok := c.callers[key]
	if !ok {
		if len(c.callers) >= c.sweepAt {
			c.sweep(now)
			c.sweepAt = max(maxCallers, 2*len(c.callers))
		}
		b = &bucket{tokens: float64(c.cfg.Burst), last: now}
		c.callers[key] = b
	}
	return b
}

// sweep drops the buckets that are full again and hold no stream.
func (c *Controller) sweep(now time.Time) {
	c.sweeps++
	for k, b := range c.callers {
		if b.streams == 0 && (c.cfg.Rate == 0 || b.tokens+now.Sub(b.last).Seconds()*c.cfg.Rate >= float64(c.cfg.Burst)) {
			delete(c.callers, k)
		}
	}
}

// Allow takes one call from key's bucket. When the bucket is empty it returns false
// and how long until a call would be allowed.
func (c *Controller) Allow(key string) (bool, time.Duration) {
	if c == nil || c.cfg.Rate <= 0 {
		return true, 0
	}
	return c.AllowAt(key, c.now())
}

// AllowAt is Allow at the time now, for a caller that keeps its own clock. A time
// before the bucket's last call refills nothing.
func (c *Controller) AllowAt(key string, now time.Time) (bool, time.Duration) {
	if c == nil || c.cfg.Rate <= 0 {
		return true, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.get(key, now)
	if now.After(b.last) {
		b.tokens = min(float64(c.cfg.Burst), b.tokens+now.Sub(b.last).Seconds()*c.cfg.Rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / c.cfg.Rate * float64(time.Second))
	return false, wait
}

// Refund gives back one call that Allow let key take, when it turned out not to count
// (a login that succeeded, for a limit on failed ones). The bucket never grows past
// Burst; a bucket already dropped is left alone, since a new one starts full.
func (c *Controller) Refund(key string) {
	if c == nil || c.cfg.Rate <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.callers[key]; ok {
		b.tokens = min(float64(c.cfg.Burst), b.tokens+1)
	}
}

// OpenStream counts one more open stream for key. It returns false when key already
// has MaxStreams open; otherwise the caller must call the returned release once.
func (c *Controller) OpenStream(key string) (release func(), ok bool) {
	if c == nil || c.cfg.MaxStreams <= 0 {
		return func() {}, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.get(key, c.now())
	if b.streams >= c.cfg.MaxStreams {
		return nil, false
	}
	b.streams++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			b.streams--
			c.mu.Unlock()
		})
	}, true
}
