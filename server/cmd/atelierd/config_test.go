package main

import (
	"strings"
	"testing"
)

// TestConfigRefuses: each out-of-range setting is refused at start-up with the
// flag's name, from the command line and from its ATELIER_* variable alike.
func TestConfigRefuses(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--grpc-stream-workers", "-1"}, nil, "--grpc-stream-workers -1 is outside 0..1024"},
		{nil, map[string]string{"ATELIER_GRPC_STREAM_WORKERS": "5000"}, "--grpc-stream-workers 5000 is outside 0..1024"},
		{[]string{"--max-message-bytes", "1000"}, nil, "--max-message-bytes 1000 is below 1 MiB"},
		{[]string{"--model-poll-interval", "-1s"}, nil, "--model-poll-interval -1s is negative"},
		{[]string{"--model-poll-interval", "1ms"}, nil, "--model-poll-interval 1ms is below 250ms"},
		{[]string{"--log-format", "xml"}, nil, "--log-format must be text or json"},
		{nil, map[string]string{"ATELIER_GRPC_STREAM_WORKERS": "two"}, "$ATELIER_GRPC_STREAM_WORKERS=\"two\""},
		{[]string{"--gc-heap-floor-mib", "-1"}, nil, "--gc-heap-floor-mib -1 is outside 0..65536"},
		{nil, map[string]string{"ATELIER_GC_HEAP_FLOOR_MIB": "100000"}, "--gc-heap-floor-mib 100000 is outside 0..65536"},
		{[]string{"--max-pixels", "0"}, nil, "--max-pixels 0 must be at least 1"},
		{nil, map[string]string{"ATELIER_MAX_PIXELS": "-5"}, "--max-pixels -5 must be at least 1"},
	} {
		_, err := parseConfig(tc.args, func(k string) string { return tc.env[k] })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("args %v env %v: got %v, want an error containing %q", tc.args, tc.env, err, tc.want)
		}
	}
	c, err := parseConfig([]string{"--grpc-stream-workers", "2"}, func(string) string { return "" })
	if err != nil || c.StreamWorkers != 2 {
		t.Fatalf("--grpc-stream-workers 2: got %d, %v", c.StreamWorkers, err)
	}
}
