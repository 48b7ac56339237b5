package main

import (
	"strings"
	"testing"
)

// TestFlagsBeforeTheCommand: common flags may come before the command, as in
// `atelier --addr HOST health`; they mean what they mean after it.
func TestFlagsBeforeTheCommand(t *testing.T) {
	// Nothing listens on port 1: the flags were read when the run fails to connect
	// (exit 1, UNAVAILABLE) instead of being refused as a command (exit 2).
	before := atelier(t, "", "--addr", "127.0.0.1:1", "--timeout", "2s", "--output", "json", "health")
	after := atelier(t, "", "health", "--addr", "127.0.0.1:1", "--timeout", "2s", "--output", "json")
	for _, r := range []ran{before, after} {
		if r.code != exitError || !strings.Contains(r.stderr, "atelier: health: UNAVAILABLE") {
			t.Fatalf("exit %d, stderr %q; want 1 and health's UNAVAILABLE", r.code, r.stderr)
		}
	}
	if r := atelier(t, "", "--addr", "127.0.0.1:1", "nosuch"); r.code != exitUsage || !strings.Contains(r.stderr, `unknown command "--addr"`) {
		t.Fatalf("no command: exit %d, stderr %q; want 2 naming the first argument", r.code, r.stderr)
	}
	for args, want := range map[string][]string{
		"--addr h:1 classify a.png": {"classify", "--addr", "h:1", "a.png"},
		"classify --addr h:1 a.png": {"classify", "--addr", "h:1", "a.png"},
		"--tls models":              {"models", "--tls"},
		"--output json":             {"--output", "json"},
	} {
		if got := commandFirst(strings.Fields(args)); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("commandFirst(%s) = %q, want %q", args, got, want)
		}
	}
}
