package metrics

import (
	"io"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestWrite(t *testing.T) {
	r := New()
	r.ObserveRPC("/atelier.v1.ClassifyService/Classify", "OK", 20*time.Millisecond)
	r.ObserveRPC("/atelier.v1.ClassifyService/Classify", "OK", 30*time.Millisecond)
	r.ObserveRPC("/atelier.v1.ClassifyService/Classify", "InvalidArgument", time.Millisecond)
	r.AddSource(func(w io.Writer) { io.WriteString(w, "extra_metric 7\n") })
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`atelier_rpc_total{method="/atelier.v1.ClassifyService/Classify",code="OK"} 2`,
		`atelier_rpc_total{method="/atelier.v1.ClassifyService/Classify",code="InvalidArgument"} 1`,
		"atelier_goroutines ", "process_resident_memory_bytes ", "extra_metric 7",
	} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("metrics lack %q:\n%s", want, body)
		}
	}
	if RSS() <= 0 {
		t.Fatalf("got RSS %d, want > 0", RSS())
	}
}

// TestGoGC reads the garbage collector's figures back: the target just set and a
// collection just forced.
func TestGoGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(250))
	before := goGCValue(t, "go_gc_cycles_total_gc_cycles_total")
	runtime.GC()
	if got := goGCValue(t, "go_gc_gogc_percent"); got != 250 {
		t.Fatalf("go_gc_gogc_percent %v, want 250", got)
	}
	if after := goGCValue(t, "go_gc_cycles_total_gc_cycles_total"); after < before+1 {
		t.Fatalf("go_gc_cycles_total_gc_cycles_total went %v -> %v across runtime.GC", before, after)
	}
	if gc, all := goGCValue(t, "go_cpu_classes_gc_total_cpu_seconds_total"), goGCValue(t, "go_cpu_classes_total_cpu_seconds_total"); gc <= 0 || gc > all {
		t.Fatalf("GC CPU %v of %v: want a positive part", gc, all)
	}
	if live, goal := goGCValue(t, "go_gc_heap_live_bytes"), goGCValue(t, "go_gc_heap_goal_bytes"); live <= 0 || goal <= live {
		t.Fatalf("go_gc_heap_live_bytes %v, go_gc_heap_goal_bytes %v: want 0 < live < goal", live, goal)
	}
}

func goGCValue(t *testing.T, name string) float64 {
	t.Helper()
	var b strings.Builder
	New().Write(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in:\n%s", name, b.String())
	return 0
}
