package client

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/resolver"
)

// DefaultResolveInterval is how often a dns: target is looked up again, so replicas
// that come and go behind a headless Service (CoreDNS answers those with a 5 s TTL)
// are found without waiting for a connection to fail.
const DefaultResolveInterval = 5 * time.Second

// minResolveGap bounds how often a failing connection may trigger a lookup.
const minResolveGap = 200 * time.Millisecond

// pollingDNS resolves dns:[//dns-server:port/]host:port targets every interval and
// whenever gRPC asks (a connection failed). gRPC's own DNS resolver only looks again
// after a connection fails, at most every 30 s, so a replica added to a healthy set
// would wait for the servers to close connections (MaxConnectionAge) to get traffic.
type pollingDNS struct{ every time.Duration }

func (b pollingDNS) Scheme() string { return "dns" }

func (b pollingDNS) Build(t resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	host, port, err := net.SplitHostPort(t.Endpoint())
	if err != nil {
		return nil, fmt.Errorf("client: dns target %q must end in host:port: %w", t.URL.String(), err)
	}
	lookup := net.DefaultResolver
	if server := t.URL.Host; server != "" {
		if _, _, err := net.SplitHostPort(server); err != nil {
			server = net.JoinHostPort(server, "53")
		}
		lookup = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &dnsWatch{host: host, port: port, lookup: lookup, cc: cc, every: b.every,
		now: make(chan struct{}, 1), cancel: cancel}
	r.wg.Add(1)
	go r.watch(ctx)
	return r, nil
}

// dnsWatch is one target's resolver.
type dnsWatch struct {
	host, port string
	lookup     *net.Resolver
	cc         resolver.ClientConn
	every      time.Duration
	now        chan struct{}
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

func (r *dnsWatch) ResolveNow(resolver.ResolveNowOptions) {
	select {
	case r.now <- struct{}{}:
	default:
	}
}

func (r *dnsWatch) Close() {
	r.cancel()
	r.wg.Wait()
}

// watch looks the name up at once, then every interval and on ResolveNow. The
// balancer hears only about changes; a failed lookup keeps the last good answer.
func (r *dnsWatch) watch(ctx context.Context) {
	defer r.wg.Done()
	var last []string
	for {
		addrs, err := r.resolve(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && last == nil:
			r.cc.ReportError(err)
		case err == nil && !slices.Equal(addrs, last):
			state := resolver.State{}
			for _, a := range addrs {
				state.Addresses = append(state.Addresses, resolver.Address{Addr: a, ServerName: r.host})
			}
			if r.cc.UpdateState(state) == nil {
				last = addrs
			}
		}
		var tick <-chan time.Time
		if r.every > 0 {
			tick = time.After(r.every)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-r.now:
			select { // a burst of failing connections asks for one lookup, not many
			case <-ctx.Done():
				return
			case <-time.After(minResolveGap):
			}
		}
	}
}

// resolve returns the sorted host:port addresses the name has now.
func (r *dnsWatch) resolve(ctx context.Context) ([]string, error) {
	if ip, err := netip.ParseAddr(strings.Trim(r.host, "[]")); err == nil {
		return []string{net.JoinHostPort(ip.String(), r.port)}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ips, err := r.lookup.LookupNetIP(ctx, "ip", r.host)
	if err != nil {
		return nil, fmt.Errorf("client: looking up %s: %w", r.host, err)
	}
	var addrs []string
	for _, ip := range ips {
		addrs = append(addrs, net.JoinHostPort(ip.Unmap().String(), r.port))
	}
	slices.Sort(addrs)
	return slices.Compact(addrs), nil
}
