//go:build cgo

package client_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"

	"github.com/atelier-vision/atelier/client"
	"github.com/atelier-vision/atelier/internal/servertest"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

const classifyMethod = "/atelier.v1.ClassifyService/Classify"

// peerCounts counts, per server address, the calls that server answered.
type peerCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (p *peerCounts) add(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n[addr]++
}

func (p *peerCounts) get(addr string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[addr]
}

// TestLiveRoundRobin runs three real servers: sequential calls spread evenly (counted
// by the client from each answer's peer and by each server in its own debug log), and
// stopping one server mid-run (SIGTERM, then SIGKILL another) fails no call.
func TestLiveRoundRobin(t *testing.T) {
	var srvs []*servertest.Server
	var addrs []string
	for range 3 {
		s := servertest.Start(t, "--log-level", "debug")
		srvs, addrs = append(srvs, s), append(addrs, s.Addr)
	}
	c, err := client.New(strings.Join(addrs, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	img, err := client.ImageFile(sampleBoot(t))
	if err != nil {
		t.Fatal(err)
	}
	counts := &peerCounts{n: map[string]int{}}
	classify := func() error {
		var p peer.Peer
		_, err := c.Classify(context.Background(), &pb.ClassifyRequest{Images: []*pb.Image{img}}, grpc.Peer(&p))
		if err == nil {
			counts.add(p.Addr.String())
		}
		return err
	}

	// Warm up until every server has answered: round-robin only picks connected ones.
	for i := 0; i < 200 && (counts.get(addrs[0]) == 0 || counts.get(addrs[1]) == 0 || counts.get(addrs[2]) == 0); i++ {
		if err := classify(); err != nil {
			t.Fatal(err)
		}
	}
	warm := map[string]int{}
	for _, a := range addrs {
		warm[a] = counts.get(a)
	}
	const sequential = 60
	for range sequential {
		if err := classify(); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range srvs {
		got := counts.get(s.Addr) - warm[s.Addr]
		if got < sequential/3-2 || got > sequential/3+2 {
			t.Errorf("server %d answered %d of %d sequential calls, want %d±2", i, got, sequential, sequential/3)
		}
		if logged := s.Calls(classifyMethod, "OK"); logged != counts.get(s.Addr) {
			t.Errorf("server %d logged %d Classify calls, the client counted %d answers from it", i, logged, counts.get(s.Addr))
		}
		t.Logf("spread: server %d answered %d of %d sequential calls (%d in its log incl. warm-up)",
			i, got, sequential, s.Calls(classifyMethod, "OK"))
	}

	// Stop one server mid-run, then another: no call may fail.
	stops := []struct {
		name string
		srv  int
		sig  syscall.Signal
	}{{"SIGTERM server 0", 0, syscall.SIGTERM}, {"SIGKILL server 1", 1, syscall.SIGKILL}}
	for _, st := range stops {
		t.Run(st.name, func(t *testing.T) {
			const workers, perWorker, stopAfter = 3, 50, 45
			before := map[string]int{}
			for _, a := range addrs {
				before[a] = counts.get(a)
			}
			var done, failed atomic.Int64
			var afterStop map[string]int
			var wg sync.WaitGroup
			stopped := make(chan struct{})
			for range workers {
				wg.Go(func() {
					for range perWorker {
						if err := classify(); err != nil {
							failed.Add(1)
							t.Errorf("call failed: %v", err)
						}
						if done.Add(1) == stopAfter {
							srvs[st.srv].Stop(st.sig)
							afterStop = map[string]int{}
							for _, a := range addrs {
								afterStop[a] = counts.get(a)
							}
							close(stopped)
						}
					}
				})
			}
			wg.Wait()
			<-stopped
			if failed.Load() != 0 {
				t.Fatalf("%d of %d calls failed while %s stopped, want 0", failed.Load(), done.Load(), st.name)
			}
			gone := addrs[st.srv]
			if extra := counts.get(gone) - afterStop[gone]; extra >= workers { // answers already on the wire may land late
				t.Errorf("the stopped server answered %d calls after it exited", extra)
			}
			for i, a := range addrs {
				t.Logf("%s: server %d answered %d of %d calls (%d after the stop)",
					st.name, i, counts.get(a)-before[a], done.Load(), counts.get(a)-afterStop[a])
			}
		})
	}
}
