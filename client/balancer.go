package client

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// retryableMethods are the read-only or idempotent calls: repeating one after
// UNAVAILABLE cannot change anything on the server.
var retryableMethods = []string{
	`{"service": "atelier.v1.ClassifyService", "method": "Classify"}`,
	`{"service": "atelier.v1.DetectService", "method": "Detect"}`,
	`{"service": "atelier.v1.GenerateService", "method": "Generate"}`,
	`{"service": "atelier.v1.ModelService"}`,
	`{"service": "grpc.health.v1.Health", "method": "Check"}`,
}

// serviceConfig balances round-robin over every resolved address and retries the
// retryable methods on UNAVAILABLE with exponential backoff.
func serviceConfig(attempts int) string {
	if attempts < 2 {
		return `{"loadBalancingConfig": [{"round_robin": {}}]}`
	}
	return fmt.Sprintf(`{
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [%s],
    "retryPolicy": {
      "maxAttempts": %d,
      "initialBackoff": "0.05s",
      "maxBackoff": "1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`, strings.Join(retryableMethods, ", "), attempts)
}

// target is what grpc.NewClient dials: a plain target for one address, or a manual
// resolver's target holding every address of a list.
type target struct {
	target      string
	resolver    resolver.Builder
	loopback    bool
	nonLoopback string // the first address that is not loopback, for the error
}

// parseTarget reads one address or a comma-separated list of host:port addresses.
func parseTarget(addrs string) (target, error) {
	var list []string
	for _, a := range strings.Split(addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			list = append(list, a)
		}
	}
	if len(list) == 0 {
		return target{}, fmt.Errorf("client: no server address in %q", addrs)
	}
	t := target{loopback: true}
	for _, a := range list {
		if !isLoopback(a) && t.loopback {
			t.loopback, t.nonLoopback = false, a
		}
	}
	if len(list) == 1 {
		t.target = list[0]
		return t, nil
	}
	state := resolver.State{}
	for _, a := range list {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return target{}, fmt.Errorf("client: %q in an address list must be host:port: %w", a, err)
		}
		state.Addresses = append(state.Addresses, resolver.Address{Addr: a, ServerName: host})
	}
	r := manual.NewBuilderWithScheme("atelier")
	r.InitialState(state)
	t.resolver, t.target = r, "atelier:///servers"
	return t, nil
}

// isLoopback reports whether a target names this machine: localhost, 127.0.0.0/8,
// ::1 or a unix socket.
func isLoopback(addr string) bool {
	if strings.HasPrefix(addr, "unix:") || strings.HasPrefix(addr, "unix-abstract:") {
		return true
	}
	if i := strings.Index(addr, ":///"); i >= 0 { // dns:///host:port, passthrough:///...
		addr = addr[i+4:]
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}
