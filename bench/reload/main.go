// Command reload is `make bench-reload`: closed-loop Classify load at a fixed
// concurrency (one connection per client) on a running atelierd while new versions of
// the classifier are dropped into its model folder (copy to a hidden folder, then
// rename) and the old ones removed, then load/unload cycles for the RSS check. It
// writes one line per call to a CSV, and a JSON summary to stdout.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/atelier-vision/atelier/client"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18800", "atelierd's address")
	pid := flag.Int("pid", 0, "atelierd's process id, for RSS")
	repo := flag.String("repo", "", "atelierd's --model-dir")
	src := flag.String("src", "savedmodels/classifier/1", "the built classifier to copy as new versions")
	image := flag.String("image", "docs/images/sample_boot.png", "the image every call sends")
	conc := flag.Int("concurrency", 16, "clients, each on its own connection")
	steady := flag.Duration("steady", 20*time.Second, "load before the first swap")
	swaps := flag.Int("swaps", 5, "new versions dropped in under load")
	gap := flag.Duration("gap", 15*time.Second, "time between swaps")
	cycles := flag.Int("cycles", 20, "load/unload cycles for the RSS check")
	token := flag.String("token", "", "admin token: sent with every call, and what ReloadRepository in the cycles needs")
	calls := flag.String("calls", "bench/reload/calls.csv", "where to write one line per call")
	flag.Parse()

	img, err := os.ReadFile(*image)
	if err != nil {
		log.Fatal(err)
	}
	req := &pb.ClassifyRequest{Images: []*pb.Image{{Data: &pb.Image_Encoded{Encoded: img}}}}
	type call struct {
		client  int
		start   time.Time
		ms      float64
		version int64
		err     string
	}
	var mu sync.Mutex
	var log_ []call
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range *conc {
		conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			log.Fatal(err)
		}
		defer conn.Close()
		c := pb.NewClassifyServiceClient(conn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				cctx, cancel := context.WithTimeout(client.AdminContext(context.Background(), *token), 30*time.Second)
				start := time.Now()
				resp, err := c.Classify(cctx, req)
				cancel()
				r := call{client: i, start: start, ms: float64(time.Since(start).Microseconds()) / 1000}
				if err != nil {
					r.err = strings.ReplaceAll(err.Error(), ",", ";")
				} else {
					r.version = resp.Model.Version
				}
				mu.Lock()
				log_ = append(log_, r)
				mu.Unlock()
			}
		}()
	}

	var swapTimes []float64
	time.Sleep(*steady)
	for i := range *swaps {
		v := int64(2 + i)
		swapTimes = append(swapTimes, time.Since(t0).Seconds())
		drop(*repo, *src, v)
		// Wait until the new version serves, then remove the old folder.
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
			mu.Lock()
			served := len(log_) > 0 && log_[len(log_)-1].version == v
			mu.Unlock()
			if served {
				break
			}
			if time.Now().After(deadline) {
				log.Fatalf("version %d never served", v)
			}
		}
		os.RemoveAll(filepath.Join(*repo, "classifier", strconv.FormatInt(v-1, 10)))
		time.Sleep(*gap)
	}
	stop()
	wg.Wait()

	// RSS over load/unload cycles, each a new version in and the old one out.
	opts := []client.Option{client.WithTimeout(5 * time.Minute)}
	if *token != "" {
		opts = append(opts, client.WithToken(*token))
	}
	mc, err := client.New(*addr, opts...)
	if err != nil {
		log.Fatal(err)
	}
	var rss []int64
	next := int64(2 + *swaps)
	for range *cycles {
		drop(*repo, *src, next)
		if _, err := mc.ReloadRepository(client.AdminContext(context.Background(), *token), true); err != nil {
			log.Fatal(err)
		}
		os.RemoveAll(filepath.Join(*repo, "classifier", strconv.FormatInt(next-1, 10)))
		if _, err := mc.ReloadRepository(client.AdminContext(context.Background(), *token), true); err != nil {
			log.Fatal(err)
		}
		waitGone(mc, next-1)
		for range 3 { // a few calls on the new version, so its buffers are in use too
			mc.Classify(context.Background(), req)
		}
		rss = append(rss, readRSS(*pid))
		next++
	}

	f, err := os.Create(*calls)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintln(f, "client,t_seconds,latency_ms,version,error")
	sort.Slice(log_, func(i, j int) bool { return log_[i].start.Before(log_[j].start) })
	for _, c := range log_ {
		fmt.Fprintf(f, "%d,%.4f,%.3f,%d,%s\n", c.client, c.start.Sub(t0).Seconds(), c.ms, c.version, c.err)
	}
	f.Close()

	// Summary: failures, monotonic versions per connection, p99s in the 10 s around
	// each switch: the first call a new version answered, which comes a poll and a
	// load after its folder is dropped in.
	switchTimes := make([]float64, len(swapTimes))
	for i := range switchTimes {
		v := int64(2 + i)
		for _, c := range log_ { // sorted by start
			if c.err == "" && c.version == v {
				switchTimes[i] = c.start.Sub(t0).Seconds()
				break
			}
		}
	}
	failed, backwards := 0, 0
	last := map[int]int64{}
	var steadyLat, swapLat []float64
	perSwap := make([][]float64, len(swapTimes))
	for _, c := range log_ {
		if c.err != "" {
			failed++
			continue
		}
		if c.version < last[c.client] {
			backwards++
		}
		last[c.client] = c.version
		t := c.start.Sub(t0).Seconds()
		if t > 2 && t < steady.Seconds() {
			steadyLat = append(steadyLat, c.ms)
		}
		for i, s := range switchTimes {
			if t >= s-5 && t < s+5 {
				swapLat = append(swapLat, c.ms)
				perSwap[i] = append(perSwap[i], c.ms)
			}
		}
	}
	var perSwapP99 []float64
	for _, l := range perSwap {
		perSwapP99 = append(perSwapP99, p99(l))
	}
	out := map[string]any{
		"concurrency": *conc, "calls": len(log_), "failed": failed, "versions_moved_backwards": backwards,
		"swap_seconds": swapTimes, "switch_seconds": switchTimes, "steady_p99_ms": p99(steadyLat), "swap_window_p99_ms": p99(swapLat),
		"per_swap_p99_ms": perSwapP99, "rss_bytes_per_cycle": rss,
		"rss_growth_first_to_last": float64(rss[len(rss)-1])/float64(rss[0]) - 1,
		"final_version":            last[0], "cycles": *cycles,
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Println(string(b))

	// The targets: no call lost, no connection going back a version, the p99 around
	// every switch at most twice the steady one, RSS over the cycles within 10%.
	var missed []string
	if failed > 0 {
		missed = append(missed, fmt.Sprintf("%d calls failed", failed))
	}
	if backwards > 0 {
		missed = append(missed, fmt.Sprintf("a connection saw an older version after a newer one %d times", backwards))
	}
	for i, p := range perSwapP99 {
		if p > 2*p99(steadyLat) {
			missed = append(missed, fmt.Sprintf("p99 around switch %d is %.1f ms, over twice the steady %.1f ms", i+1, p, p99(steadyLat)))
		}
	}
	if g := out["rss_growth_first_to_last"].(float64); g > 0.10 {
		missed = append(missed, fmt.Sprintf("RSS grew %.1f%% over the cycles", 100*g))
	}
	if len(missed) > 0 {
		log.Fatalf("targets missed: %s", strings.Join(missed, "; "))
	}
}

// drop publishes a copy of src as repo/classifier/<v>: copy to a hidden folder, rename.
func drop(repo, src string, v int64) {
	staging := filepath.Join(repo, "classifier", fmt.Sprintf(".staging-%d", v))
	if err := copyDir(src, staging); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(staging, filepath.Join(repo, "classifier", strconv.FormatInt(v, 10))); err != nil {
		log.Fatal(err)
	}
}

func waitGone(c *client.Client, v int64) {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		sts, err := c.ModelStatus(context.Background(), "classifier")
		if err != nil {
			log.Fatal(err)
		}
		gone := true
		for _, s := range sts[0].Versions {
			gone = gone && s.Version != v
		}
		if gone {
			return
		}
	}
	log.Fatalf("version %d never unloaded", v)
}

func copyDir(src, dst string) error {
	src, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	return os.CopyFS(dst, os.DirFS(src))
}

func readRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func p99(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[min(len(s)-1, int(float64(len(s))*0.99))]
}
