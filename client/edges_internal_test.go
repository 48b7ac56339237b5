package client

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/grpc/resolver"

	"github.com/atelier-vision/atelier/internal/dnstest"
)

// EdgeDNS serves A records as a DNS server should when they do not fit a UDP answer:
// it sends as many as fit with the TC bit set, and the client asks again over TCP.
// (internal/dnstest sends the whole answer over UDP; Go's resolver reads what fits
// its buffer, and a name with 1,000 addresses arrives with 48.) It returns the
// server's host:port. Exported for the package's external tests.
func EdgeDNS(t testing.TB, name string, addrs ...netip.Addr) string {
	t.Helper()
	pc, l, err := dnstest.Listen()
	if err != nil {
		t.Fatal(err)
	}
	fqdn := dns.Fqdn(name)
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		for _, q := range req.Question {
			if !strings.EqualFold(q.Name, fqdn) || len(addrs) == 0 {
				m.Rcode = dns.RcodeNameError
				continue
			}
			if q.Qtype != dns.TypeA {
				continue
			}
			for _, a := range addrs {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
					A: net.IP(a.AsSlice())})
			}
		}
		if w.LocalAddr().Network() == "udp" {
			size := dns.MinMsgSize
			if opt := req.IsEdns0(); opt != nil {
				size = int(opt.UDPSize())
			}
			m.Truncate(size) // sets TC when the answer is cut
		}
		w.WriteMsg(m)
	})
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	udp := &dns.Server{PacketConn: pc, Handler: handler, NotifyStartedFunc: notify}
	tcp := &dns.Server{Listener: l, Handler: handler, NotifyStartedFunc: notify}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	<-started
	<-started
	t.Cleanup(func() {
		udp.Shutdown()
		tcp.Shutdown()
	})
	return pc.LocalAddr().String()
}

// TestEdgeDNSThousandAddresses: a name with 1,000 A records (an answer too big for
// UDP, so looked up again over TCP) reaches the balancer whole, sorted.
func TestEdgeDNSThousandAddresses(t *testing.T) {
	var addrs []netip.Addr
	var want []string
	for i := range 1000 {
		a := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		addrs = append(addrs, a)
		want = append(want, a.String()+":8500")
	}
	slices.Sort(want) // as strings: 10.0.0.0, 10.0.0.1, 10.0.0.10, ...
	server := EdgeDNS(t, "many.test", addrs...)
	cc := &recordingCC{}
	target := resolver.Target{URL: *mustURL(t, "dns://"+server+"/many.test:8500")}
	r, err := pollingDNS{every: time.Hour}.Build(target, cc, resolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cc.waitFor(t, want, 5*time.Second)
}
