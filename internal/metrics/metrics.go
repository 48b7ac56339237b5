// Package metrics counts what the server does and serves it in the Prometheus text
// format on /metrics, beside Go's profiler on /debug/pprof/.
package metrics

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Registry holds the server's counters. The zero value is not usable; call New.
//
// Every label value comes from the server's own names (gRPC methods it serves, status
// codes, models in its repository), never from request data: gRPC answers an unknown
// method before any interceptor sees it, so a client cannot add series.
type Registry struct {
	mu       sync.Mutex
	rpcs     map[[2]string]*rpcStat // method, code
	latency  map[string]*histogram  // unary method
	inFlight map[string]int64       // method
	sources  []func(w io.Writer)
}

// processStart is when the process started, as near as Go code can tell: package
// variables are set before main runs, so it precedes flag parsing and model loads.
var processStart = time.Now()

type rpcStat struct {
	count   int64
	seconds float64
}

// latencyBuckets are the upper bounds, in seconds, of atelier_rpc_duration_seconds.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// histogram counts observations at or below each of latencyBuckets.
type histogram struct {
	counts []int64 // per bucket, not cumulative; the last is +Inf
	sum    float64
	n      int64
}

// labelEscaper escapes a label value as Prometheus' text format wants: a backslash, a
// double quote and a line feed, nothing else.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// Label quotes a label value for the text format. Model names are folder names, which
// may hold any byte but "/"; Go's %q would write a tab as \t, which a parser reads as
// the two characters "\t" or refuses.
func Label(v string) string { return `"` + labelEscaper.Replace(v) + `"` }

// New returns an empty registry.
func New() *Registry {
	return &Registry{rpcs: map[[2]string]*rpcStat{}, latency: map[string]*histogram{}, inFlight: map[string]int64{}}
}

// StartRPC counts a call of method in flight until EndRPC.
func (r *Registry) StartRPC(method string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.inFlight[method]++
	r.mu.Unlock()
}

// EndRPC counts a call started with StartRPC as finished with code after d. A unary
// call's d also goes into its method's latency histogram; a stream's is its whole
// life, not a latency, and goes only into atelier_rpc_seconds_total.
func (r *Registry) EndRPC(method, code string, d time.Duration, unary bool) {
	if r == nil {
		return
	}
	sec := d.Seconds()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight[method]--
	s := r.rpcs[[2]string{method, code}]
	if s == nil {
		s = &rpcStat{}
		r.rpcs[[2]string{method, code}] = s
	}
	s.count++
	s.seconds += sec
	if !unary {
		return
	}
	h := r.latency[method]
	if h == nil {
		h = &histogram{counts: make([]int64, len(latencyBuckets)+1)}
		r.latency[method] = h
	}
	i, _ := slices.BinarySearch(latencyBuckets, sec)
	h.counts[i]++
	h.sum += sec
	h.n++
}

// AddSource registers a function that writes more metrics (for example the batchers').
func (r *Registry) AddSource(f func(w io.Writer)) {
	r.mu.Lock()
	r.sources = append(r.sources, f)
	r.mu.Unlock()
}

// Write writes every metric in the Prometheus text format.
func (r *Registry) Write(w io.Writer) {
	r.mu.Lock()
	keys := make([][2]string, 0, len(r.rpcs))
	for k := range r.rpcs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	fmt.Fprintln(w, "# HELP atelier_rpc_total Finished RPCs by method and status code.")
	fmt.Fprintln(w, "# TYPE atelier_rpc_total counter")
	for _, k := range keys {
		fmt.Fprintf(w, "atelier_rpc_total{method=%q,code=%q} %d\n", k[0], k[1], r.rpcs[k].count)
	}
	fmt.Fprintln(w, "# HELP atelier_rpc_seconds_total Time spent in finished RPCs.")
	fmt.Fprintln(w, "# TYPE atelier_rpc_seconds_total counter")
	for _, k := range keys {
		fmt.Fprintf(w, "atelier_rpc_seconds_total{method=%q,code=%q} %g\n", k[0], k[1], r.rpcs[k].seconds)
	}
	r.writeLatency(w)
	methods := slices.Sorted(maps.Keys(r.inFlight))
	fmt.Fprintln(w, "# HELP atelier_rpc_in_flight Calls being served, by method: for a streaming method, the open streams.")
	fmt.Fprintln(w, "# TYPE atelier_rpc_in_flight gauge")
	for _, m := range methods {
		fmt.Fprintf(w, "atelier_rpc_in_flight{method=%q} %d\n", m, r.inFlight[m])
	}
	sources := append([]func(io.Writer){}, r.sources...)
	r.mu.Unlock()
	fmt.Fprintln(w, "# TYPE atelier_goroutines gauge")
	fmt.Fprintf(w, "atelier_goroutines %d\n", runtime.NumGoroutine())
	fmt.Fprintln(w, "# TYPE process_resident_memory_bytes gauge")
	fmt.Fprintf(w, "process_resident_memory_bytes %d\n", RSS())
	fmt.Fprintln(w, "# TYPE process_cpu_seconds_total counter")
	fmt.Fprintf(w, "process_cpu_seconds_total %g\n", CPUSeconds())
	writeGoGC(w)
	fmt.Fprintln(w, "# HELP process_start_time_seconds Start time of the process since the Unix epoch, in seconds.")
	fmt.Fprintln(w, "# TYPE process_start_time_seconds gauge")
	fmt.Fprintf(w, "process_start_time_seconds %.3f\n", float64(processStart.UnixMilli())/1000)
	fmt.Fprintln(w, "# HELP process_uptime_seconds Seconds since the process started (time() - process_start_time_seconds).")
	fmt.Fprintln(w, "# TYPE process_uptime_seconds gauge")
	fmt.Fprintf(w, "process_uptime_seconds %g\n", time.Since(processStart).Seconds())
	for _, f := range sources {
		f(w)
	}
}

// writeLatency writes the unary calls' latency histograms; r.mu is held.
func (r *Registry) writeLatency(w io.Writer) {
	fmt.Fprintln(w, "# HELP atelier_rpc_duration_seconds Latency of finished unary calls, by method.")
	fmt.Fprintln(w, "# TYPE atelier_rpc_duration_seconds histogram")
	for _, m := range slices.Sorted(maps.Keys(r.latency)) {
		h := r.latency[m]
		var cum int64
		for i, le := range latencyBuckets {
			cum += h.counts[i]
			fmt.Fprintf(w, "atelier_rpc_duration_seconds_bucket{method=%q,le=\"%g\"} %d\n", m, le, cum)
		}
		fmt.Fprintf(w, "atelier_rpc_duration_seconds_bucket{method=%q,le=\"+Inf\"} %d\n", m, h.n)
		fmt.Fprintf(w, "atelier_rpc_duration_seconds_sum{method=%q} %g\n", m, h.sum)
		fmt.Fprintf(w, "atelier_rpc_duration_seconds_count{method=%q} %d\n", m, h.n)
	}
}

// goGC is the Go runtime's garbage collection figures, named as Prometheus' Go
// client names them from runtime/metrics.
var goGC = []struct{ name, typ, help, sample string }{
	{"go_gc_cycles_total_gc_cycles_total", "counter", "Completed garbage collection cycles.", "/gc/cycles/total:gc-cycles"},
	{"go_cpu_classes_gc_total_cpu_seconds_total", "counter", "CPU the garbage collector used, as the Go runtime estimates it (an overestimate; compare with go_cpu_classes_total_cpu_seconds_total).", "/cpu/classes/gc/total:cpu-seconds"},
	{"go_cpu_classes_total_cpu_seconds_total", "counter", "CPU available to Go code, as the Go runtime estimates it: GOMAXPROCS integrated over the wall time.", "/cpu/classes/total:cpu-seconds"},
	{"go_gc_gogc_percent", "gauge", "The garbage collection target in force (GOGC, raised by atelierd's heap floor while the live heap is small).", "/gc/gogc:percent"},
	{"go_gc_heap_goal_bytes", "gauge", "Heap size at which the next collection starts.", "/gc/heap/goal:bytes"},
	{"go_gc_heap_live_bytes", "gauge", "Heap memory the last collection found live.", "/gc/heap/live:bytes"},
}

func writeGoGC(w io.Writer) {
	samples := make([]rtmetrics.Sample, len(goGC))
	for i, m := range goGC {
		samples[i].Name = m.sample
	}
	rtmetrics.Read(samples)
	for i, m := range goGC {
		var v float64
		switch samples[i].Value.Kind() {
		case rtmetrics.KindUint64:
			v = float64(samples[i].Value.Uint64())
		case rtmetrics.KindFloat64:
			v = samples[i].Value.Float64()
		default:
			continue // not in this Go release
		}
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %g\n", m.name, m.help, m.name, m.typ, m.name, v)
	}
}

// Handler serves /metrics and /debug/pprof/.
func (r *Registry) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		r.Write(w)
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// RSS returns the process's resident memory in bytes (0 where /proc is missing).
func RSS() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(fields[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// CPUSeconds returns the user and system CPU time of the whole process, every thread
// (TensorFlow's own included), in seconds.
func CPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
