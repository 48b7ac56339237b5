// Package dnstest is a small DNS server for tests: it answers A queries for the names
// it is given, over UDP and TCP on one loopback port, and the answers can change
// while it runs, as a headless Service's do when pods come and go.
package dnstest

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Server answers A queries from a table that tests change with Set.
type Server struct {
	// Addr is the server's host:port, for targets such as dns://Addr/name:8500.
	Addr string

	mu      sync.Mutex
	records map[string][]netip.Addr // by fully qualified name, lower case
	queries atomic.Int64
	udp     *dns.Server
	tcp     *dns.Server
}

// Listen opens UDP and TCP on one free loopback port, as a DNS server serves. A free
// UDP port may be taken for TCP (by any connection's ephemeral port), so it tries
// other ports a few times before it gives up.
func Listen() (net.PacketConn, net.Listener, error) {
	var err error
	for range 20 {
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			return nil, nil, err
		}
		var l net.Listener
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			return pc, l, nil
		}
		err = fmt.Errorf("dnstest: tcp beside udp %s: %w", pc.LocalAddr(), err)
		pc.Close()
	}
	return nil, nil, err
}

// Start serves on a free loopback port until Close.
func Start() (*Server, error) {
	pc, l, err := Listen()
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: pc.LocalAddr().String(), records: map[string][]netip.Addr{}}
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	s.udp = &dns.Server{PacketConn: pc, Handler: s, NotifyStartedFunc: notify}
	s.tcp = &dns.Server{Listener: l, Handler: s, NotifyStartedFunc: notify}
	go s.udp.ActivateAndServe()
	go s.tcp.ActivateAndServe()
	<-started
	<-started
	return s, nil
}

// Set makes name answer with addrs (none: the name does not exist).
func (s *Server) Set(name string, addrs ...netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[dns.Fqdn(strings.ToLower(name))] = append([]netip.Addr(nil), addrs...)
}

// Queries counts the questions answered so far.
func (s *Server) Queries() int64 { return s.queries.Load() }

// Close stops both listeners.
func (s *Server) Close() {
	s.udp.Shutdown()
	s.tcp.Shutdown()
}

// ServeDNS answers A questions from the table, with a TTL of 1 s; AAAA questions for
// a known name get an empty answer, anything else NXDOMAIN.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range req.Question {
		addrs, ok := s.records[strings.ToLower(q.Name)]
		if !ok || len(addrs) == 0 {
			m.Rcode = dns.RcodeNameError
			continue
		}
		if q.Qtype != dns.TypeA {
			continue
		}
		for _, a := range addrs {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
				A:   net.IP(a.AsSlice()),
			})
		}
	}
	w.WriteMsg(m)
}
