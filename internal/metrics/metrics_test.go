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
	for _, c := range []struct {
		code string
		d    time.Duration
	}{{"OK", 20 * time.Millisecond}, {"OK", 30 * time.Millisecond}, {"InvalidArgument", time.Millisecond}} {
		r.StartRPC("/atelier.v1.ClassifyService/Classify")
		r.EndRPC("/atelier.v1.ClassifyService/Classify", c.code, c.d, true)
	}
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
	return sample(t, b.String(), name)
}

// sample reads the value of the series name (no labels) from a scrape's text.
func sample(t *testing.T, text, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in:\n%s", name, text)
	return 0
}

// TestLatencyAndInFlight: a unary method's durations land in cumulative buckets with
// their sum and count; a stream counts in flight until it ends, and has no histogram.
func TestLatencyAndInFlight(t *testing.T) {
	r := New()
	const m, stream = "/atelier.v1.ClassifyService/Classify", "/atelier.v1.ClassifyService/ClassifyStream"
	for _, d := range []time.Duration{500 * time.Microsecond, time.Millisecond, 20 * time.Millisecond, time.Minute} {
		r.StartRPC(m)
		r.EndRPC(m, "OK", d, true)
	}
	r.StartRPC(stream)
	var b strings.Builder
	r.Write(&b)
	for _, want := range []string{
		`atelier_rpc_duration_seconds_bucket{method="` + m + `",le="0.001"} 2`,
		`atelier_rpc_duration_seconds_bucket{method="` + m + `",le="0.01"} 2`,
		`atelier_rpc_duration_seconds_bucket{method="` + m + `",le="0.025"} 3`,
		`atelier_rpc_duration_seconds_bucket{method="` + m + `",le="30"} 3`,
		`atelier_rpc_duration_seconds_bucket{method="` + m + `",le="+Inf"} 4`,
		`atelier_rpc_duration_seconds_sum{method="` + m + `"} 60.0215`,
		`atelier_rpc_duration_seconds_count{method="` + m + `"} 4`,
		`atelier_rpc_in_flight{method="` + stream + `"} 1`,
		`atelier_rpc_in_flight{method="` + m + `"} 0`,
	} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	r.EndRPC(stream, "OK", time.Hour, false)
	b.Reset()
	r.Write(&b)
	if !strings.Contains(b.String(), `atelier_rpc_in_flight{method="`+stream+`"} 0`) {
		t.Errorf("the ended stream is still in flight:\n%s", b.String())
	}
	if strings.Contains(b.String(), `atelier_rpc_duration_seconds_count{method="`+stream) {
		t.Errorf("a stream has a latency histogram:\n%s", b.String())
	}
	var none *Registry // a server without metrics
	none.StartRPC(m)
	none.EndRPC(m, "OK", time.Second, true)
}

func TestLabelEscapesAsTheTextFormatSays(t *testing.T) {
	for in, want := range map[string]string{
		"classifier": `"classifier"`,
		`a"b`:        `"a\"b"`,
		`a\b`:        `"a\\b"`,
		"a\nb":       `"a\nb"`,
		"tab\there":  "\"tab\there\"",
		"robe d'été": `"robe d'été"`,
	} {
		if got := Label(in); got != want {
			t.Errorf("Label(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestProcessStartTime: the start time is the process's, not the registry's (a server
// builds its registry after loading its models), and the uptime agrees with it.
func TestProcessStartTime(t *testing.T) {
	time.Sleep(20 * time.Millisecond)
	created := time.Now()
	var b strings.Builder
	New().Write(&b)
	start, uptime := sample(t, b.String(), "process_start_time_seconds"), sample(t, b.String(), "process_uptime_seconds")
	if createdAt := float64(created.UnixMilli()) / 1000; start > createdAt-0.02 {
		t.Errorf("process_start_time_seconds %.3f is not before the registry's creation %.3f", start, createdAt)
	}
	if now := float64(time.Now().UnixMilli()) / 1000; uptime < 0.02 || start+uptime < now-1 || start+uptime > now+1 {
		t.Errorf("start %.3f + uptime %.3f is not now (%.3f)", start, uptime, now)
	}
}
