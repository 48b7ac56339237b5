package clustertest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/atelier-vision/atelier/client"
)

// comeBack starts the stopped replicas again (new pods at the same IPs), publishes
// them, and measures how long until each gets its share of the Go client's calls and
// of the Python client's, the two under load together. The Go client looks the name
// up again every client.DefaultResolveInterval; the Python client (gRPC C-core's
// resolver) only when a connection closes, which the replicas' --max-connection-age
// makes happen: its one connection, to the replica that stayed up, is aged out.
//
// The Go client's calls are told apart by the peer each call saw; the Python
// client's are GetModel calls, which only it makes here, counted by each replica.
func comeBack(t *testing.T, c *cluster, l *goLoad, back ...string) {
	c.start(back...)
	// The Python client starts while the Service lists only the replica that stayed up.
	py := c.pythonModelLoad(t, 30, 2)
	pyEnded := false
	endPy := func() pyReport { pyEnded = true; py.stop(); return py.wait() }
	defer func() {
		if !pyEnded {
			endPy()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.run(ctx, 4) }()
	defer func() { cancel(); <-done }()
	time.Sleep(500 * time.Millisecond)

	added := time.Now()
	c.publish(ips...)
	type sample struct {
		at time.Time
		n  map[string]int
	}
	pySamples := []sample{{added, c.counts(getModelSeries)}}
	const window, limit = time.Second, 10 * time.Second
	goFirst, pyFirst := map[string]time.Duration{}, map[string]time.Duration{}
	var goShare, pyShare time.Duration
	var pyLast map[string]int // the Python calls of the last window, by replica
	for (goShare == 0 || pyShare == 0) && time.Since(added) < limit {
		time.Sleep(100 * time.Millisecond)
		now := time.Now()
		calls := l.since(now.Add(-window))
		byIP, failed := tally(calls)
		if len(failed) > 0 {
			t.Fatalf("Go client: %d calls failed while replicas came back: %v", len(failed), failed[0])
		}
		s := sample{now, c.counts(getModelSeries)}
		pySamples = append(pySamples, s)
		var base sample // the last sample a window before this one
		for _, p := range pySamples {
			if !p.at.After(now.Add(-window)) {
				base = p
			}
		}
		for _, ip := range back {
			if _, ok := goFirst[ip]; !ok && byIP[ip] > 0 {
				goFirst[ip] = now.Sub(added)
			}
			if _, ok := pyFirst[ip]; !ok && s.n[ip] > pySamples[0].n[ip] {
				pyFirst[ip] = now.Sub(added)
			}
		}
		if goShare == 0 && fairShare(byIP, len(calls), back) && now.Add(-window).After(added) {
			goShare = now.Sub(added)
		}
		if base.n != nil {
			pyLast = delta(base.n, s.n)
			if pyShare == 0 && fairShare(pyLast, sum(pyLast), back) {
				pyShare = now.Sub(added)
			}
		}
	}
	if goShare == 0 {
		t.Fatalf("Go client: the replicas that came back had no fair share %v after the Service listed them "+
			"(first calls on them after %v)", limit, goFirst)
	}
	if pyShare == 0 {
		t.Fatalf("Python client: the replicas that came back had no fair share %v after the Service listed them "+
			"(its calls in the last second: %v; first calls on them after %v)", limit, pyLast, pyFirst)
	}
	from, pyFrom := time.Now(), c.counts(getModelSeries)
	for time.Since(from) < 2500*time.Millisecond || (len(l.since(from)) < 300 && time.Since(from) < 10*time.Second) {
		time.Sleep(50 * time.Millisecond)
	}
	pyByIP := delta(pyFrom, c.counts(getModelSeries))
	cancel()
	<-done
	r := endPy()
	if len(r.Failures) > 0 {
		t.Fatalf("Python client: %d of %d calls failed while replicas came back, want 0; first: %v", len(r.Failures), r.Calls, r.Failures[0])
	}
	byIP, failed := tally(l.since(from))
	if len(failed) > 0 {
		t.Fatalf("%d calls failed: %v", len(failed), failed[0])
	}
	checkSpread(t, "Go client after two replicas came back (2.5 s, or 300 calls)", byIP, ips...)
	checkSpread(t, "Python client (GetModel, 2 threads) after two replicas came back, beside the Go client", pyByIP, ips...)
	firsts := func(first map[string]time.Duration) string {
		var out []string
		for _, ip := range back {
			out = append(out, fmt.Sprintf("%s after %v", ip, first[ip].Round(10*time.Millisecond)))
		}
		return strings.Join(out, ", ")
	}
	t.Logf("measured: replicas back in DNS, Go client (polls the name every %v): first calls on %s (checked every 100 ms); "+
		"both with a fair share (a 1 s window within 10%% of a third) after %v",
		client.DefaultResolveInterval, firsts(goFirst), goShare.Round(10*time.Millisecond))
	t.Logf("measured: replicas back in DNS, Python client (looks the name up again when --max-connection-age, %v here, "+
		"closes its connection): first calls on %s; both with a fair share after %v; %d calls, 0 failed",
		maxConnectionAge, firsts(pyFirst), pyShare.Round(10*time.Millisecond), r.Calls)
}

// fairShare says whether each of back answered within 10% of a third of total calls
// (or more).
func fairShare(byIP map[string]int, total int, back []string) bool {
	for _, ip := range back {
		if float64(byIP[ip]) < 0.9*float64(total)/3 {
			return false
		}
	}
	return total > 0
}

func sum(byIP map[string]int) int {
	n := 0
	for _, v := range byIP {
		n += v
	}
	return n
}
