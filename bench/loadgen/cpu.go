package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/atelier-vision/atelier/internal/imageio"
	"github.com/atelier-vision/atelier/internal/tensor"
)

// counters is what loadgen reads from a server's /metrics.
type counters struct{ cpu, session, gcCPU, gcCycles, runs, rows float64 }

// scrape reads the process CPU, the part of it TensorFlow's sessions used, the Go
// garbage collector's CPU and cycles, and the batchers' runs and rows (summed over
// models); an empty url gives zeros.
func scrape(url string) (counters, error) {
	var c counters
	if url == "" {
		return c, nil
	}
	resp, err := http.Get(url)
	if err != nil {
		return c, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		line := s.Text()
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch metric, _, _ := strings.Cut(name, "{"); metric {
		case "process_cpu_seconds_total":
			c.cpu = v
		case "atelier_tensorflow_cpu_seconds_total":
			c.session = v
		case "go_cpu_classes_gc_total_cpu_seconds_total":
			c.gcCPU = v
		case "go_gc_cycles_total_gc_cycles_total":
			c.gcCycles = v
		case "atelier_batch_runs_total":
			c.runs += v
		case "atelier_batch_rows_total":
			c.rows += v
		}
	}
	return c, s.Err()
}

// RawCPU is the CPU one image costs in-process, without gRPC: decode and resize
// (one goroutine), and a session run per image at each batch size.
type RawCPU struct {
	Label          string             `json:"label"`
	DecodeUS       float64            `json:"decode_cpu_us"`
	SessionUSBatch map[string]float64 `json:"session_cpu_us_per_image"`
}

// cpuNow is the process's CPU time, all threads.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawCPUCost measures RawCPU on the SavedModel in dir.
func rawCPUCost(dir string, images [][]byte) error {
	r, err := openRaw(dir)
	if err != nil {
		return err
	}
	defer r.close()
	m, p, h, w, c := r.model, r.prep, r.h, r.w, r.c
	pix := make([]uint8, h*w*c)
	// Decode for a second of wall time at least: a short loop would be measuring the
	// tail of the model's warm-up on TensorFlow's threads as much as the decoding.
	time.Sleep(200 * time.Millisecond)
	start, decodes := cpuNow(), 0
	for began := time.Now(); decodes < 100 || time.Since(began) < time.Second; decodes++ {
		if err := p.Load(imageio.Source{Encoded: images[decodes%len(images)]}, h, w, c, pix); err != nil {
			return err
		}
	}
	out := RawCPU{Label: "raw-cpu", DecodeUS: float64((cpuNow() - start).Microseconds()) / float64(decodes),
		SessionUSBatch: map[string]float64{}}
	for _, b := range []int{1, 2, 4, 8, 16, 32} {
		batch := make([]uint8, b*h*w*c)
		in, _ := tensor.NewUint8([]int64{int64(b), int64(h), int64(w), int64(c)}, batch)
		run := func() error {
			_, err := m.Run(context.Background(), "serving_default", map[string]*tensor.Tensor{"images": in}, []string{"probabilities"})
			return err
		}
		for range 5 { // warm up
			if err := run(); err != nil {
				return err
			}
		}
		runs := max(2000/b, 50)
		start := cpuNow()
		for range runs {
			if err := run(); err != nil {
				return err
			}
		}
		out.SessionUSBatch[strconv.Itoa(b)] = float64((cpuNow() - start).Microseconds()) / float64(runs*b)
	}
	data, _ := json.Marshal(out)
	fmt.Println(string(data))
	return nil
}
