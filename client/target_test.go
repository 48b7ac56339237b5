package client

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	cases := []struct {
		name         string
		addrs        string
		wantTarget   string
		wantBalanced bool
		wantLoopback bool
		wantErr      string
	}{
		{"one localhost", "localhost:8500", "localhost:8500", false, true, ""},
		{"one ipv4 loopback", "127.0.0.1:8500", "127.0.0.1:8500", false, true, ""},
		{"one ipv6 loopback", "[::1]:8500", "[::1]:8500", false, true, ""},
		{"127/8 is loopback", "127.3.2.1:8500", "127.3.2.1:8500", false, true, ""},
		{"dns scheme", "dns:///localhost:8500", "dns:///localhost:8500", false, true, ""},
		{"dns scheme with a server", "dns://127.0.0.1:53/localhost:8500", "dns://127.0.0.1:53/localhost:8500", false, true, ""},
		{"dns name of a headless service", "dns:///atelier-headless:8500", "dns:///atelier-headless:8500", false, false, ""},
		{"unix socket", "unix:///tmp/atelier.sock", "unix:///tmp/atelier.sock", false, true, ""},
		{"remote host", "shop.example:8500", "shop.example:8500", false, false, ""},
		{"private address is remote", "10.0.0.7:8500", "10.0.0.7:8500", false, false, ""},
		{"list of three", "127.0.0.1:1, 127.0.0.1:2,127.0.0.1:3", "atelier:///servers", true, true, ""},
		{"list with a remote host", "127.0.0.1:1,shop.example:2", "atelier:///servers", true, false, ""},
		{"trailing comma", "localhost:8500,", "localhost:8500", false, true, ""},
		{"empty", " , ", "", false, false, "no server address"},
		{"list entry without port", "127.0.0.1:1,localhost", "", false, false, "must be host:port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTarget(tc.addrs)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.target != tc.wantTarget || (got.resolver != nil) != tc.wantBalanced || got.loopback != tc.wantLoopback {
				t.Fatalf("got target %q, balanced %v, loopback %v; want %q, %v, %v",
					got.target, got.resolver != nil, got.loopback, tc.wantTarget, tc.wantBalanced, tc.wantLoopback)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	cases := []struct {
		name  string
		addrs string
		opts  []Option
		want  string
	}{
		{"plaintext to a remote host", "shop.example:8500", nil, "shop.example:8500 is not a loopback address"},
		{"plaintext to a remote host in a list", "localhost:1,10.0.0.7:2", nil, "10.0.0.7:2 is not a loopback address"},
		{"zero timeout", "localhost:8500", []Option{WithTimeout(0)}, "timeout 0s must be positive"},
		{"no attempts", "localhost:8500", []Option{WithRetries(0)}, "0 retry attempts"},
		{"six attempts", "localhost:8500", []Option{WithRetries(6)}, "6 retry attempts"},
		{"no address", "", nil, "no server address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.addrs, tc.opts...)
			if err == nil {
				c.Close()
				t.Fatalf("New(%q) succeeded, want an error containing %q", tc.addrs, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}
	for _, ok := range []struct {
		addrs string
		opts  []Option
	}{{"shop.example:8500", []Option{WithInsecure()}}, {"shop.example:8500", []Option{WithTLS(nil)}}} {
		c, err := New(ok.addrs, ok.opts...)
		if err != nil {
			t.Fatalf("New(%q) with an explicit transport: %v", ok.addrs, err)
		}
		c.Close()
	}
}

func TestServiceConfigRetriesOnlySafeMethods(t *testing.T) {
	sc := serviceConfig(DefaultAttempts, false)
	for _, want := range []string{`"round_robin"`, `"maxAttempts": 5`, `"retryableStatusCodes": ["UNAVAILABLE"]`,
		`"method": "Classify"`, `"method": "Detect"`, `"method": "Generate"`,
		`"method": "ListModels"`, `"method": "GetModel"`, `"method": "GetModelStatus"`,
		`"service": "grpc.health.v1.Health", "method": "Check"`} {
		if !strings.Contains(sc, want) {
			t.Errorf("service config lacks %s:\n%s", want, sc)
		}
	}
	for _, never := range []string{"ClassifyStream", "DetectStream", "WatchAlerts", "Interpolate", "Watch\"",
		"ReloadRepository", "LoadModel", "UnloadModel", "SetVersionLabels", `{"service": "atelier.v1.ModelService"}`} {
		if strings.Contains(sc, never) {
			t.Errorf("service config retries %s, a stream or an admin call", never)
		}
	}
	if sc := serviceConfig(1, false); strings.Contains(sc, "retryPolicy") || !strings.Contains(sc, "round_robin") {
		t.Errorf("serviceConfig(1) = %s, want round_robin without retries", sc)
	}
}

func TestServiceConfigHealthCheck(t *testing.T) {
	for _, attempts := range []int{1, DefaultAttempts} {
		var parsed map[string]any
		for _, hc := range []bool{false, true} {
			sc := serviceConfig(attempts, hc)
			if err := json.Unmarshal([]byte(sc), &parsed); err != nil {
				t.Fatalf("serviceConfig(%d, %v) is not JSON: %v\n%s", attempts, hc, err, sc)
			}
			_, got := parsed["healthCheckConfig"]
			if got != hc {
				t.Errorf("serviceConfig(%d, %v) has healthCheckConfig %v, want %v", attempts, hc, got, hc)
			}
		}
	}
}
