package models

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseConfig feeds the model-config parser arbitrary text: it must never panic,
// every error must be ErrConfig naming the file, and what it accepts must be usable.
func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		"model classifier\n  policy latest 2\n  label stable 3\n  label canary 4\n  precision bf16\n",
		"model gan\n  policy specific 1 7\nmodel detector\n  policy all\n",
		"# comment only\n",
		"policy latest 1\n",
		"model a\nlabel s 99999999999999999999\n",
		"model a\npolicy latest -1\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseConfig("f.conf", strings.NewReader(text))
		if err != nil {
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "f.conf") {
				t.Fatalf("error %q is not ErrConfig naming the file", err)
			}
			return
		}
		for name, mc := range c.Models {
			if name == "" || strings.ContainsAny(name, "/\\") {
				t.Fatalf("accepted model name %q", name)
			}
			if mc.Policy.Kind == Latest && mc.Policy.N < 1 {
				t.Fatalf("model %q: accepted policy latest %d", name, mc.Policy.N)
			}
			for label, v := range mc.Labels {
				if v <= 0 || !labelPattern.MatchString(label) {
					t.Fatalf("model %q: accepted label %q -> %d", name, label, v)
				}
			}
		}
	})
}
