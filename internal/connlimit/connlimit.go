// Package connlimit bounds the connections a listener holds open: in all, and from one
// caller (an IPv4 address or an IPv6 /64, admission.CallerKey). gRPC-Go accepts every
// connection it is offered and keeps it until the client leaves, so without a bound
// one host can open connections until the process runs out of file descriptors, and
// then nobody else is served. A connection over a limit is accepted and closed at
// once: the client sees the connection end (gRPC's UNAVAILABLE) and backs off,
// instead of waiting in the kernel's backlog for an Accept that never comes.
package connlimit

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/atelier-vision/atelier/internal/admission"
	"github.com/atelier-vision/atelier/internal/lograte"
)

// Config sets the limits; 0 turns a limit off.
type Config struct {
	// Max is the most connections open at once.
	Max int
	// PerCaller is the most connections open at once from one caller.
	PerCaller int
}

// Validate checks the ranges.
func (c Config) Validate() error {
	if c.Max < 0 || c.PerCaller < 0 {
		return fmt.Errorf("--max-connections and --max-connections-per-caller must be 0 (no limit) or more, got %d and %d", c.Max, c.PerCaller)
	}
	return nil
}

// refusedLinesPerSecond bounds the log lines of refused connections: a host opening
// connections in a loop would otherwise write one line each.
const refusedLinesPerSecond = 5

// Listener is a net.Listener that holds at most the configured connections open.
type Listener struct {
	net.Listener
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	open     int
	byCaller map[string]int

	refusedMax, refusedCaller atomic.Int64
	lines                     lograte.Limiter
}

// New wraps l. Its connections count until they are closed.
func New(l net.Listener, cfg Config, log *slog.Logger) *Listener {
	return &Listener{Listener: l, cfg: cfg, log: log, byCaller: map[string]int{}, lines: lograte.Limiter{PerSecond: refusedLinesPerSecond}}
}

// Accept returns the next connection within the limits; the ones over them are
// closed as they come.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := callerKey(c.RemoteAddr())
		if why := l.admit(key); why != "" {
			c.Close()
			l.refused(why, c.RemoteAddr())
			continue
		}
		return &conn{Conn: c, l: l, key: key}, nil
	}
}

// admit counts a new connection from key, or says which limit it is over.
func (l *Listener) admit(key string) (over string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.cfg.Max > 0 && l.open >= l.cfg.Max:
		l.refusedMax.Add(1)
		return "max"
	case l.cfg.PerCaller > 0 && l.byCaller[key] >= l.cfg.PerCaller:
		l.refusedCaller.Add(1)
		return "caller"
	}
	l.open++
	l.byCaller[key]++
	return ""
}

func (l *Listener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byCaller[key]--; l.byCaller[key] <= 0 {
		delete(l.byCaller, key)
	}
}

func (l *Listener) refused(why string, remote net.Addr) {
	ok, suppressed := l.lines.Admit(time.Now())
	if !ok {
		return
	}
	limit := fmt.Sprintf("--max-connections %d", l.cfg.Max)
	if why == "caller" {
		limit = fmt.Sprintf("--max-connections-per-caller %d", l.cfg.PerCaller)
	}
	l.log.Warn("connection refused", "remote", remote.String(), "limit", limit, "suppressed", suppressed)
}

// Open returns the connections open now, in all and from the busiest caller.
func (l *Listener) Open() (total, busiest int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range l.byCaller {
		busiest = max(busiest, n)
	}
	return l.open, busiest
}

// WriteMetrics writes the listener's figures in the Prometheus text format.
func (l *Listener) WriteMetrics(w io.Writer) {
	total, busiest := l.Open()
	fmt.Fprintln(w, "# HELP atelier_connections_open Client connections open on the gRPC port.")
	fmt.Fprintln(w, "# TYPE atelier_connections_open gauge")
	fmt.Fprintf(w, "atelier_connections_open %d\n", total)
	fmt.Fprintln(w, "# HELP atelier_connections_open_busiest_caller Connections open from the caller (IPv4 address or IPv6 /64) that holds the most.")
	fmt.Fprintln(w, "# TYPE atelier_connections_open_busiest_caller gauge")
	fmt.Fprintf(w, "atelier_connections_open_busiest_caller %d\n", busiest)
	fmt.Fprintln(w, "# HELP atelier_connections_refused_total Connections closed as they came because a limit was reached: max (--max-connections) or caller (--max-connections-per-caller).")
	fmt.Fprintln(w, "# TYPE atelier_connections_refused_total counter")
	fmt.Fprintf(w, "atelier_connections_refused_total{limit=\"max\"} %d\n", l.refusedMax.Load())
	fmt.Fprintf(w, "atelier_connections_refused_total{limit=\"caller\"} %d\n", l.refusedCaller.Load())
}

func callerKey(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return admission.CallerKey(t.IP.String())
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return admission.CallerKey(host)
}

// conn gives its place back when it is closed, once however often Close is called.
type conn struct {
	net.Conn
	l    *Listener
	key  string
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}
