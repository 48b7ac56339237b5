package client

import (
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"

	"github.com/atelier-vision/atelier/internal/dnstest"
)

// recordingCC is the resolver's view of a ClientConn: it keeps every address list.
type recordingCC struct {
	resolver.ClientConn
	mu      sync.Mutex
	updates [][]string
	errs    []error
}

func (c *recordingCC) UpdateState(s resolver.State) error {
	var addrs []string
	for _, a := range s.Addresses {
		addrs = append(addrs, a.Addr)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.updates = append(c.updates, addrs)
	return nil
}

func (c *recordingCC) ReportError(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, err)
}

func (c *recordingCC) ParseServiceConfig(string) *serviceconfig.ParseResult { return nil }

// waitFor polls until the latest update equals want.
func (c *recordingCC) waitFor(t *testing.T, want []string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c.mu.Lock()
		var last []string
		if n := len(c.updates); n > 0 {
			last = c.updates[n-1]
		}
		c.mu.Unlock()
		if slices.Equal(last, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("resolver's latest addresses %v after %v, want %v", last, within, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPollingDNSFollowsChanges(t *testing.T) {
	srv, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	a, b, c := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.4")
	srv.Set("atelier.test", a, b, c)

	cc := &recordingCC{}
	target := resolver.Target{URL: *mustURL(t, "dns://"+srv.Addr+"/atelier.test:8500")}
	r, err := pollingDNS{every: 50 * time.Millisecond}.Build(target, cc, resolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cc.waitFor(t, []string{"127.0.0.2:8500", "127.0.0.3:8500", "127.0.0.4:8500"}, 2*time.Second)

	srv.Set("atelier.test", a, c) // b's pod is gone
	cc.waitFor(t, []string{"127.0.0.2:8500", "127.0.0.4:8500"}, 2*time.Second)

	srv.Set("atelier.test") // every pod gone: keep the last good answer
	time.Sleep(200 * time.Millisecond)
	cc.waitFor(t, []string{"127.0.0.2:8500", "127.0.0.4:8500"}, 0)

	srv.Set("atelier.test", b)
	cc.waitFor(t, []string{"127.0.0.3:8500"}, 2*time.Second)

	cc.mu.Lock()
	defer cc.mu.Unlock()
	if len(cc.errs) != 0 {
		t.Errorf("resolver reported %v after a good answer, want no error", cc.errs)
	}
	// Unchanged answers are not passed on: one update per distinct answer.
	if len(cc.updates) != 3 {
		t.Errorf("resolver sent %d updates %v, want 3", len(cc.updates), cc.updates)
	}
}

func TestPollingDNSResolveNow(t *testing.T) {
	srv, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Set("atelier.test", netip.MustParseAddr("127.0.0.2"))
	cc := &recordingCC{}
	target := resolver.Target{URL: *mustURL(t, "dns://"+srv.Addr+"/atelier.test:8500")}
	r, err := pollingDNS{every: 0}.Build(target, cc, resolver.BuildOptions{}) // no polling
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cc.waitFor(t, []string{"127.0.0.2:8500"}, 2*time.Second)
	srv.Set("atelier.test", netip.MustParseAddr("127.0.0.3"))
	r.ResolveNow(resolver.ResolveNowOptions{})
	cc.waitFor(t, []string{"127.0.0.3:8500"}, 2*time.Second)
}

func TestPollingDNSUnknownName(t *testing.T) {
	srv, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cc := &recordingCC{}
	target := resolver.Target{URL: *mustURL(t, "dns://"+srv.Addr+"/nobody.test:8500")}
	r, err := pollingDNS{every: time.Hour}.Build(target, cc, resolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		cc.mu.Lock()
		n := len(cc.errs)
		cc.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("resolver reported no error for a name that does not exist")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.Close()
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
