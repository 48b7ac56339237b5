package clustertest

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// rollModel publishes version 2 of the classifier to one replica at a time, as a
// rolling update of a model volume would (rename into place, then SIGHUP for an
// immediate rescan), while the Go and Python clients and the CLI run closed-loop
// load. Each replica loads and warms version 2, switches to it and unloads version
// 1; no call may fail, and once the roll is over every call is answered by version 2.
// The CLI classifies a folder of files, run after run, from before the roll until
// after it. cliRate is the CLI's calls per second alone (from the spread phase).
func rollModel(t *testing.T, c *cluster, l *goLoad, cliRate float64) {
	const pySeconds = 10 // about the roll's length on two busy cores
	py := c.pythonLoad(c.target, pySeconds, 2)
	from := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); l.run(ctx, 4) }()
	// A run of a few seconds: about 2 s of files alone, at half the concurrency beside the others.
	files := max(20, int(2*cliRate))
	dir := c.images(files)
	type cliRun struct {
		err         error
		out, errOut bytes.Buffer
	}
	var cliRuns []*cliRun
	cliDone := make(chan struct{})
	go func() {
		defer close(cliDone)
		for ctx.Err() == nil {
			r := &cliRun{}
			cli := c.cliCommand("classify", "--batch", "1", "--concurrency", "2", "--output", "csv", dir)
			cli.Stdout, cli.Stderr = &r.out, &r.errOut
			r.err = cli.Run()
			cliRuns = append(cliRuns, r)
		}
	}()
	time.Sleep(time.Second)

	var took []time.Duration
	for _, ip := range ips {
		start := time.Now()
		staging := filepath.Join(c.modelDirs[ip], "classifier", ".staging-2")
		if err := os.Symlink(c.classifierV1, staging); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(staging, filepath.Join(c.modelDirs[ip], "classifier", "2")); err != nil {
			t.Fatal(err)
		}
		c.replicas[ip].cmd.Process.Signal(syscall.SIGHUP)
		waitVersions(t, c.replicas[ip].addr, []int64{2}, 60*time.Second)
		took = append(took, time.Since(start))
	}
	time.Sleep(time.Second) // calls after the roll
	rolled := time.Now()
	time.Sleep(time.Second)
	cancel()
	<-done
	r := py()
	withTimeout(t, 60*time.Second, "the CLI's last run", func() { <-cliDone })
	cliVersions, cliOK := map[string]int{}, 0
	for i, run := range cliRuns {
		if run.err == nil {
			cliOK++
		} else {
			t.Errorf("CLI run %d of %d: %v during the roll, want exit 0 for %d files:\n%s", i+1, len(cliRuns), run.err, files, tail(run.errOut.String(), 20))
		}
		byVersion, failed := cliRows(t, run.out.String())
		if n := byVersion["1"] + byVersion["2"]; n != files || failed > 0 {
			t.Errorf("CLI run %d of %d: %d of %d files answered (by version %v), %d failed, want every file answered",
				i+1, len(cliRuns), n, files, byVersion, failed)
		}
		for v, n := range byVersion {
			cliVersions[v] += n
		}
	}
	if cliVersions["1"] == 0 || cliVersions["2"] == 0 {
		t.Errorf("the CLI ran %d times, answered by version %v: want runs from before the roll until after it", len(cliRuns), cliVersions)
	}
	if len(r.Failures) > 0 {
		t.Errorf("Python client: %d of %d calls failed during the roll, want 0; first: %v", len(r.Failures), r.Calls, r.Failures[0])
	}
	calls := l.since(from)
	byIP, failed := tally(calls)
	if len(failed) > 0 {
		t.Errorf("Go client: %d of %d calls failed during the roll, want 0; first: %v", len(failed), len(calls), failed[0])
	}
	byVersion := map[int64]int{}
	for _, cl := range calls {
		byVersion[cl.version]++
		if cl.err == nil && cl.start.After(rolled) && cl.version != 2 {
			t.Errorf("a call after the roll was answered by version %d of %s", cl.version, cl.ip)
		}
	}
	t.Logf("measured: rolling classifier version 1 -> 2, one replica at a time (load, warm-up, switch, unload of 1 took %v): "+
		"Go %d calls, %d failed, by version %v, by replica %v; Python %d calls in its first %d s, %d failed; "+
		"CLI %d runs of %d files, %d of them exit 0, by version %v",
		roundAll(took), len(calls), len(failed), byVersion, byIP, r.Calls, pySeconds, len(r.Failures),
		len(cliRuns), files, cliOK, cliVersions)
}

// cliRows counts the files in classify's CSV output answered by each model version
// (their first-ranked rows), and the files that failed.
func cliRows(t *testing.T, out string) (byVersion map[string]int, failed int) {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) < 1 {
		t.Fatalf("CLI output is not CSV (%v):\n%s", err, tail(out, 20))
	}
	col := func(name string) int { return slices.Index(rows[0], name) }
	byVersion = map[string]int{}
	for _, r := range rows[1:] {
		switch {
		case r[col("error_code")] != "":
			failed++
		case r[col("rank")] == "1":
			byVersion[r[col("version")]]++
		}
	}
	return byVersion, failed
}

// waitVersions waits until the replica at addr serves exactly the classifier versions want.
func waitVersions(t *testing.T, addr string, want []int64, limit time.Duration) {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m := pb.NewModelServiceClient(conn)
	var got []int64
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := m.GetModel(ctx, &pb.GetModelRequest{Model: &pb.ModelSpec{Name: "classifier"}})
		cancel()
		if err != nil {
			continue
		}
		got = got[:0]
		for _, v := range resp.GetModel().GetVersions() {
			got = append(got, v.GetVersion())
		}
		if slices.Equal(got, want) {
			return
		}
	}
	t.Fatalf("%s serves classifier versions %v after %v, want %v", addr, got, limit, want)
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}
