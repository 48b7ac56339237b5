package client

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	_ "google.golang.org/grpc/health" // client-side health checking
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// retryableMethods are the read-only or idempotent calls: repeating one after
// UNAVAILABLE cannot change anything on the server. ModelService's admin calls
// (ReloadRepository, LoadModel, UnloadModel, SetVersionLabels) are not among them: an
// attempt may have run before its answer was lost, and a second would report a false
// error (UnloadModel's NOT_FOUND).
var retryableMethods = []string{
	`{"service": "atelier.v1.ClassifyService", "method": "Classify"}`,
	`{"service": "atelier.v1.DetectService", "method": "Detect"}`,
	`{"service": "atelier.v1.GenerateService", "method": "Generate"}`,
	`{"service": "atelier.v1.ModelService", "method": "ListModels"}`,
	`{"service": "atelier.v1.ModelService", "method": "GetModel"}`,
	`{"service": "atelier.v1.ModelService", "method": "GetModelStatus"}`,
	`{"service": "grpc.health.v1.Health", "method": "Check"}`,
}

// serviceConfig balances round-robin over every resolved address and retries the
// retryable methods on UNAVAILABLE with exponential backoff. With healthCheck, only
// addresses that report SERVING on grpc.health.v1 get calls: a starting or draining
// server says NOT_SERVING, so its share moves to the others before it closes its
// connections. (One plain address goes without, so that Health can report a
// server's NOT_SERVING rather than fail to reach it.)
func serviceConfig(attempts int, healthCheck bool) string {
	balance := `"loadBalancingConfig": [{"round_robin": {}}]`
	if healthCheck {
		balance += `,
  "healthCheckConfig": {"serviceName": ""}`
	}
	if attempts < 2 {
		return "{" + balance + "}"
	}
	return fmt.Sprintf(`{
  %s,
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
}`, balance, strings.Join(retryableMethods, ", "), attempts)
}

// target is what grpc.NewClient dials: a plain target for one address, or a manual
// resolver's target holding every address of a list.
type target struct {
	target      string
	resolver    resolver.Builder
	dns         bool // a dns: target, looked up again every interval
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
		t.target, t.dns = list[0], strings.HasPrefix(list[0], "dns:")
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
	if i := strings.Index(addr, "://"); i >= 0 { // dns:///host:port, dns://server/host:port
		rest := addr[i+3:]
		if j := strings.Index(rest, "/"); j >= 0 {
			addr = rest[j+1:]
		}
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
