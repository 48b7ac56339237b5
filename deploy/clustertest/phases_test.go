package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/atelier-vision/atelier/client"
)

// TestCluster runs the phases in order on one set of replicas; each phase leaves all
// three replicas up and published for the next.
func TestCluster(t *testing.T) {
	start := time.Now()
	c := newCluster(t)
	t.Logf("measured: set-up (build, three replicas SERVING) took %v", time.Since(start).Round(100*time.Millisecond))
	l, err := newGoLoad(c.target, c.imageMsg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.c.Close()
	// A control beside it: the same client without retries, which callers would see fail.
	bare, err := newGoLoad(c.target, c.imageMsg, client.WithRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	defer bare.c.Close()
	// Warm up until every replica has answered: round_robin picks only READY ones.
	l.warmUp(t, ips...)
	bare.warmUp(t, ips...)

	var cliRate float64
	t.Run("spread", func(t *testing.T) { cliRate = spread(t, c, l) })
	if t.Failed() {
		return
	}
	t.Run("SIGTERM drains", func(t *testing.T) { stopOne(t, c, l, bare, ips[0], syscall.SIGTERM, cliRate) })
	t.Run("SIGKILL", func(t *testing.T) { stopOne(t, c, l, bare, ips[1], syscall.SIGKILL, cliRate) })
	t.Run("replicas come back", func(t *testing.T) { comeBack(t, c, l, ips[0], ips[1]) })
	t.Run("streams", func(t *testing.T) { streams(t, c, l) })
	t.Run("proxies", func(t *testing.T) { proxies(t, c) })
	t.Run("rolling model update", func(t *testing.T) { rollModel(t, c, l, cliRate) })
	t.Logf("measured: the whole test took %v", time.Since(start).Round(100*time.Millisecond))
}

// spread runs each client alone under closed-loop load and checks every replica got
// a third of its calls, ±10%. It returns the CLI's calls per second.
func spread(t *testing.T, c *cluster, l *goLoad) (cliRate float64) {
	t.Run("go", func(t *testing.T) {
		before := c.classified()
		calls := l.runFor(4, 2500*time.Millisecond, 300, 10*time.Second)
		byIP, failed := tally(calls)
		if len(failed) > 0 {
			t.Fatalf("%d calls failed: %v", len(failed), failed[0])
		}
		checkSpread(t, "Go client (4 workers, 2.5 s or 300 calls)", byIP, ips...)
		t.Logf("measured: Go calls with three healthy replicas: p50 %v, p99 %v, longest %v",
			percentile(calls, 0.5).Round(time.Millisecond), percentile(calls, 0.99).Round(time.Millisecond), longest(calls).Round(time.Millisecond))
		// The servers' own counts agree with the peers the client saw.
		if d := delta(before, c.classified()); fmt.Sprint(d) != fmt.Sprint(byIP) {
			t.Errorf("servers counted %v, the client saw %v", d, byIP)
		}
	})
	t.Run("cli", func(t *testing.T) {
		const n = 300
		dir := c.images(n)
		before := c.classified()
		start := time.Now()
		out, err := c.cliCommand("classify", "--batch", "1", "--concurrency", "4", "--output", "csv", dir).CombinedOutput()
		took := time.Since(start)
		if err != nil {
			t.Fatalf("atelier classify: %v\n%s", err, out)
		}
		d := delta(before, c.classified())
		checkSpread(t, fmt.Sprintf("CLI (classify --batch 1 --concurrency 4, %d files)", n), d, ips...)
		if total := d[ips[0]] + d[ips[1]] + d[ips[2]]; total != n {
			t.Errorf("servers answered %d calls for %d files", total, n)
		}
		cliRate = n / took.Seconds()
	})
	t.Run("python", func(t *testing.T) {
		before := c.classified()
		wait := c.pythonLoad(c.target, 2.5, 4)
		r := wait()
		if len(r.Failures) > 0 {
			t.Fatalf("%d Python calls failed: %v", len(r.Failures), r.Failures[0])
		}
		d := delta(before, c.classified())
		checkSpread(t, "Python client (4 threads, 2.5 s)", d, ips...)
		if total := d[ips[0]] + d[ips[1]] + d[ips[2]]; total != r.Calls+1 { // +1: its warm-up call
			t.Errorf("servers answered %d calls, the Python client made %d", total, r.Calls+1)
		}
	})
	return cliRate
}

// stopOne stops victim with sig while all three clients run closed-loop load, and
// wants no call to fail as the caller sees it. The Service's name stops listing the
// victim once it is gone (after SIGKILL, a second later: endpoints lag).
//
// bare, a Go client without retries, runs beside them as a control: what the
// callers would have seen without the retry policy. After SIGKILL its failures are
// reported, not judged; after SIGTERM it must lose none.
func stopOne(t *testing.T, c *cluster, l, bare *goLoad, victim string, sig syscall.Signal, cliRate float64) {
	const phase = 4500 * time.Millisecond
	files := int(cliRate * phase.Seconds())
	dir := c.images(files)
	py := c.pythonLoad(c.target, phase.Seconds(), 2)
	var cliOut bytes.Buffer
	cli := c.cliCommand("classify", "--batch", "1", "--concurrency", "2", "--output", "csv", dir)
	cli.Stdout, cli.Stderr = &cliOut, &cliOut
	attempts0, transparent0 := l.counter.attempts.Load(), l.counter.transparent.Load()
	from := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), phase)
	defer cancel()
	goDone := make(chan struct{})
	go func() { defer close(goDone); l.run(ctx, 4) }()
	bareDone := make(chan struct{})
	go func() { defer close(bareDone); bare.run(ctx, 2) }()
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)

	var drained func() bool
	if sig == syscall.SIGTERM {
		drained = watchDrain(t, c.replicas[victim].addr)
	}
	killed := time.Now()
	took := c.replicas[victim].stop(sig)
	if sig == syscall.SIGKILL {
		time.Sleep(time.Second)
	}
	// Only the replicas still up: the one stopped in the phase before is gone too,
	// and a dead address in the answer would leave it to reconnect backoff, not DNS,
	// when it comes back.
	c.publish(c.up()...)
	<-goDone
	<-bareDone
	_, bareFailed := tally(bare.since(from))
	calls := l.since(from)
	byIP, failed := tally(calls)
	retries := l.counter.attempts.Load() - attempts0 - int64(len(calls))
	transparent := l.counter.transparent.Load() - transparent0
	r := py()
	cliErr := cli.Wait()

	if len(failed) > 0 {
		t.Errorf("Go client: %d of %d calls failed, want 0; first: %v", len(failed), len(calls), failed[0])
	}
	if len(r.Failures) > 0 {
		t.Errorf("Python client: %d of %d calls failed, want 0; first: %v", len(r.Failures), r.Calls, r.Failures[0])
	}
	if cliErr != nil {
		t.Errorf("CLI: %v, want exit 0 for %d files:\n%s", cliErr, files, tail(cliOut.String(), 20))
	}
	late := 0
	for _, cl := range calls {
		if cl.ip == victim && cl.end.After(killed.Add(took)) {
			late++
		}
	}
	if late > 0 {
		t.Errorf("%d calls were answered by %s after it exited", late, victim)
	}
	again := retried(calls)
	if int64(len(again)) > retries {
		t.Errorf("%d calls took more than one attempt, but only %d retries were counted", len(again), retries)
	}
	// A drain loses nothing by itself: the retry policy would hide a server that
	// dropped its in-flight calls on SIGTERM, so the control client without it must
	// lose none, and the retrying client must have needed no retry on UNAVAILABLE (a
	// transparent retry of a stream the GOAWAY refused is gRPC's own, and fine).
	if sig == syscall.SIGTERM {
		// A drain ends once its calls are done: one that hangs until --shutdown-grace
		// and then stops the rest would pass every check above but this one.
		if took >= shutdownGrace {
			t.Errorf("%s took %v to exit after SIGTERM, want less than its --shutdown-grace %v: "+
				"the drain waited out the grace instead of ending when its calls were done", victim, took.Round(time.Millisecond), shutdownGrace)
		}
		if !drained() {
			t.Errorf("%s did not say NOT_SERVING on grpc.health.v1 before it went away", victim)
		}
		if len(bareFailed) > 0 {
			t.Errorf("the control client without retries: %d of %d calls failed during a graceful drain, want 0; first: %v",
				len(bareFailed), len(bare.since(from)), bareFailed[0])
		}
		if n := retries - transparent; n > 0 {
			t.Errorf("the Go client retried %d calls during a graceful drain, want 0", n)
		}
	}
	t.Logf("measured: %s on one of three replicas under load: Go %d calls, %d failed, %d retries (%d transparent) in %d calls, "+
		"slowest retried call %v, p99 %v, longest call %v; the control client without retries: %d of %d calls failed; Python %d calls, %d failed; CLI %d files, exit %v; the replica took %v to exit; calls per replica %v",
		signalName[sig], len(calls), len(failed), retries, transparent, len(again), longest(again).Round(time.Millisecond), percentile(calls, 0.99).Round(time.Millisecond), longest(calls).Round(time.Millisecond),
		len(bareFailed), len(bare.since(from)),
		r.Calls, len(r.Failures), files, exitCode(cliErr), took.Round(time.Millisecond), byIP)
}

var signalName = map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL"}

func without(list []string, drop string) []string {
	var out []string
	for _, s := range list {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}

func tail(s string, lines int) string {
	b := []byte(s)
	for i, n := len(b)-1, 0; i >= 0; i-- {
		if b[i] == '\n' {
			if n++; n > lines {
				return string(b[i+1:])
			}
		}
	}
	return s
}

func exitCode(err error) string {
	if err == nil {
		return "0"
	}
	return err.Error()
}

// watchDrain watches the health of the server at addr, which must be SERVING, and
// returns a function that says whether it turned NOT_SERVING before the stream
// ended (waiting up to 5 s). The watch ends at NOT_SERVING, so that it does not hold
// up the server's graceful stop.
func watchDrain(t *testing.T, addr string) (notServing func() bool) {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	var first *healthpb.HealthCheckResponse
	if err == nil {
		first, err = w.Recv()
	}
	if err != nil || first.Status != healthpb.HealthCheckResponse_SERVING {
		cancel()
		conn.Close()
		t.Fatalf("health of %s before the drain: %v, %v; want SERVING", addr, first, err)
	}
	saw := make(chan bool, 1)
	go func() {
		defer conn.Close()
		defer cancel()
		for {
			r, err := w.Recv()
			if err != nil || r.Status == healthpb.HealthCheckResponse_NOT_SERVING {
				saw <- err == nil
				return
			}
		}
	}()
	return func() bool {
		select {
		case ok := <-saw:
			return ok
		case <-time.After(5 * time.Second):
			return false
		}
	}
}
