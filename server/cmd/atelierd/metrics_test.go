package main

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"

	"github.com/atelier-vision/atelier/internal/testenv"
)

// TestMetricsAnSREReads reads /metrics of the real server after real calls: per
// method latency histograms and calls in flight (an open stream), per model version
// queue and compute time, queue depth and load time; and checks the exposition
// format: every family typed, its samples in one group.
func TestMetricsAnSREReads(t *testing.T) {
	a, conn := serveLifecycle(t, testenv.ModelDir(t, "classifier"), "--precision", "fp32")
	web := httptest.NewServer(a.metrics.Handler())
	t.Cleanup(web.Close)
	set := testSet(t)
	img := rawFrame(set.Images[0])

	const calls = 5
	for range calls {
		if _, err := pb.NewClassifyServiceClient(conn).Classify(ctxFor(t, time.Minute), &pb.ClassifyRequest{Images: []*pb.Image{img}}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := pb.NewClassifyServiceClient(conn).ClassifyStream(admin(ctxFor(t, time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	s.Send(&pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Config{Config: &pb.ClassifyStreamConfig{}}})
	s.Send(&pb.ClassifyStreamRequest{Message: &pb.ClassifyStreamRequest_Frame{Frame: &pb.StreamFrame{Image: img}}})
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}

	m := scrape(t, web.URL)
	const classify, stream = `method="/atelier.v1.ClassifyService/Classify"`, `method="/atelier.v1.ClassifyService/ClassifyStream"`
	const version = `model="classifier",version="1"`
	for _, c := range []struct {
		series string
		ok     func(float64) bool
		want   string
	}{
		{"atelier_rpc_duration_seconds_count{" + classify + "}", func(v float64) bool { return v == calls }, "5 calls"},
		{"atelier_rpc_duration_seconds_bucket{" + classify + `,le="+Inf"}`, func(v float64) bool { return v == calls }, "5 calls"},
		{"atelier_rpc_duration_seconds_sum{" + classify + "}", func(v float64) bool { return v > 0 }, "> 0"},
		{"atelier_rpc_in_flight{" + stream + "}", func(v float64) bool { return v == 1 }, "the open stream"},
		{"atelier_rpc_in_flight{" + classify + "}", func(v float64) bool { return v == 0 }, "0"},
		{"atelier_batch_queue_seconds_total{" + version + "}", func(v float64) bool { return v > 0 }, "> 0"},
		{"atelier_batch_compute_seconds_total{" + version + "}", func(v float64) bool { return v > 0 }, "> 0"},
		{"atelier_batch_queued{" + version + "}", func(v float64) bool { return v == 0 }, "0"},
		{"atelier_batch_failed_total{" + version + "}", func(v float64) bool { return v == 0 }, "0: every call was answered"},
		{"atelier_model_load_seconds{" + version + "}", func(v float64) bool { return v > 0 && v < 600 }, "the load's seconds"},
		{"atelier_log_lines_suppressed_total", func(v float64) bool { return v == 0 }, "0"},
		{"atelier_batch_size_bucket{" + version + `,le="1"}`, func(v float64) bool { return v >= calls+1 }, "at least the 6 one-image runs"},
		{"atelier_batch_size_count{" + version + "}", func(v float64) bool { return v == m.samples["atelier_batch_size_bucket{"+version+`,le="+Inf"}`] }, "the +Inf bucket"},
		{"atelier_batch_size_count{" + version + "}", func(v float64) bool { return v == m.samples["atelier_batch_runs_total{"+version+"}"] }, "atelier_batch_runs_total"},
		{"atelier_batch_size_sum{" + version + "}", func(v float64) bool { return v == m.samples["atelier_batch_rows_total{"+version+"}"] }, "atelier_batch_rows_total"},
	} {
		v, ok := m.samples[c.series]
		if !ok || !c.ok(v) {
			t.Errorf("%s = %v (present %v), want %s", c.series, v, ok, c.want)
		}
	}
	// A stream is no latency: it has no histogram.
	if _, ok := m.samples["atelier_rpc_duration_seconds_count{"+stream+"}"]; ok {
		t.Errorf("ClassifyStream has a latency histogram")
	}

	s.CloseSend()
	for {
		if _, err := s.Recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for scrape(t, web.URL).samples["atelier_rpc_in_flight{"+stream+"}"] != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the closed stream is still in flight")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", m.text)
	}
}

// exposition is one scrape of /metrics.
type exposition struct {
	text    string
	samples map[string]float64 // series (name and labels) -> value
}

// scrape reads /metrics and checks its format as Prometheus' text format asks: a
// family's TYPE line comes before its samples, and all of a family's lines form one
// group. A histogram's _bucket, _sum and _count samples belong to its family.
func scrape(t *testing.T, url string) exposition {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	e := exposition{text: string(body), samples: map[string]float64{}}
	types := map[string]string{}
	done := map[string]bool{} // families whose group has ended
	current := ""
	enter := func(family string, line string) {
		if family == current {
			return
		}
		if done[family] {
			t.Errorf("family %s is split into two groups, at %q", family, line)
		}
		done[current], current = true, family
	}
	for _, line := range strings.Split(strings.TrimSuffix(e.text, "\n"), "\n") {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(f, " ")
			if types[name] != "" {
				t.Errorf("second TYPE line for %s", name)
			}
			types[name] = typ
			enter(name, line)
			continue
		}
		if f, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, _, _ := strings.Cut(f, " ")
			enter(name, line)
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Errorf("malformed line %q", line)
			continue
		}
		series, value := line[:i], line[i+1:]
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Errorf("line %q: %v", line, err)
		}
		e.samples[series] = v
		name, _, _ := strings.Cut(series, "{")
		family := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && types[base] == "histogram" {
				family = base
			}
		}
		if types[family] == "" {
			t.Errorf("sample %q has no TYPE line before it", line)
		}
		enter(family, line)
	}
	return e
}
