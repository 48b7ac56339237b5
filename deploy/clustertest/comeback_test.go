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
// them, and measures how long until each gets its share of the Go client's calls:
// the client looks the name up again every client.DefaultResolveInterval.
func comeBack(t *testing.T, c *cluster, l *goLoad, back ...string) {
	c.start(back...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.run(ctx, 4) }()
	defer func() { cancel(); <-done }()
	time.Sleep(500 * time.Millisecond)

	added := time.Now()
	c.publish(ips...)
	const window, limit = time.Second, 10 * time.Second
	first := map[string]time.Duration{}
	var share time.Duration
	for share == 0 && time.Since(added) < limit {
		time.Sleep(100 * time.Millisecond)
		now := time.Now()
		calls := l.since(now.Add(-window))
		byIP, failed := tally(calls)
		if len(failed) > 0 {
			t.Fatalf("%d calls failed while replicas came back: %v", len(failed), failed[0])
		}
		for _, ip := range back {
			if _, ok := first[ip]; !ok && byIP[ip] > 0 {
				first[ip] = now.Sub(added)
			}
		}
		total := len(calls)
		fair := true
		for _, ip := range back {
			if float64(byIP[ip]) < 0.9*float64(total)/3 { // within 10% of a third
				fair = false
			}
		}
		if fair && now.Add(-window).After(added) {
			share = now.Sub(added)
		}
	}
	if share == 0 || share > limit {
		t.Fatalf("the replicas that came back had no fair share %v after the Service listed them, want within %v", limit, limit)
	}
	from := time.Now()
	for time.Since(from) < 2500*time.Millisecond || (len(l.since(from)) < 300 && time.Since(from) < 10*time.Second) {
		time.Sleep(50 * time.Millisecond)
	}
	byIP, failed := tally(l.since(from))
	if len(failed) > 0 {
		t.Fatalf("%d calls failed: %v", len(failed), failed[0])
	}
	checkSpread(t, "Go client after two replicas came back (2.5 s, or 300 calls)", byIP, ips...)
	var firsts []string
	for _, ip := range back {
		firsts = append(firsts, fmt.Sprintf("%s after %v", ip, first[ip].Round(10*time.Millisecond)))
	}
	t.Logf("measured: replicas back in DNS: first calls on %s (polled every %v, checked every 100 ms); "+
		"both with a fair share (a 1 s window within 10%% of a third) after %v",
		strings.Join(firsts, ", "), client.DefaultResolveInterval, share.Round(10*time.Millisecond))
}
