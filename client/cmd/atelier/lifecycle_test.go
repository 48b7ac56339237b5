package main

import (
	"strings"
	"testing"
)

func TestLifecycleUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"label without set", []string{"label", "classifier", "stable=3"}, "want `label set MODEL LABEL=VERSION"},
		{"label without pairs", []string{"label", "set", "classifier"}, "want `label set MODEL LABEL=VERSION"},
		{"label not a pair", []string{"label", "set", "classifier", "stable"}, `"stable": want LABEL=VERSION`},
		{"label version not a number", []string{"label", "set", "classifier", "stable=three"}, `"stable=three"`},
		{"reload with arguments", []string{"reload", "now"}, "reload takes no arguments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := atelier(t, "127.0.0.1:1", tc.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, exitUsage, tc.want)
			}
		})
	}
}
