package models

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig("m.conf", strings.NewReader(`
# the classifier keeps two versions and two labels
model classifier
  policy latest 2
  label stable 3   # the one we trust
  label canary 4
model gan
  policy specific 1 7
model detector
  policy all
  precision fp32
`))
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Model("classifier")
	if cl.Policy.String() != "latest 2" || cl.Labels["stable"] != 3 || cl.Labels["canary"] != 4 {
		t.Fatalf("got classifier %+v", cl)
	}
	if got := c.Model("gan").Policy; got.String() != "specific 7 1" || !slices.Equal(got.choose([]int64{9, 7, 3, 1}), []int64{7, 1}) {
		t.Fatalf("got gan policy %v", got)
	}
	if got := c.Model("detector"); got.Policy.String() != "all" || got.Precision != "fp32" {
		t.Fatalf("got detector policy %q precision %q, want all and fp32", got.Policy, got.Precision)
	}
	if got := c.Model("classifier").Precision; got != "" {
		t.Fatalf("got classifier precision %q, want none (the server's default)", got)
	}
	if got := c.Model("unnamed").Policy.String(); got != "latest 1" {
		t.Fatalf("got default policy %q, want latest 1", got)
	}
}

func TestParseConfigErrorsNameTheLine(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"policy before model", "policy all\n", "m.conf:1: `policy` before any `model NAME`"},
		{"unknown policy", "model a\n\npolicy newest\n", `m.conf:3: unknown policy "newest"`},
		{"latest zero", "model a\npolicy latest 0\n", `m.conf:2: policy latest: "0" is not a count`},
		{"specific without versions", "model a\npolicy specific\n", "m.conf:2: `policy specific` needs at least one version"},
		{"specific not a number", "model a\npolicy specific 3 x\n", `m.conf:2: policy specific: "x"`},
		{"bad label name", "model a\nlabel Stable 3\n", `m.conf:2: "Stable" is not a label`},
		{"label version", "model a\nlabel stable -1\n", `m.conf:2: label stable: version "-1"`},
		{"label arity", "model a\nlabel stable\n", "m.conf:2: want `label NAME VERSION`"},
		{"duplicate label", "model a\nlabel s 1\nlabel s 2\n", `m.conf:3: label "s" of model "a" appears twice`},
		{"duplicate model", "model a\nmodel a\n", `m.conf:2: model "a" appears twice`},
		{"second policy", "model a\npolicy latest 2\npolicy all\n", `m.conf:3: model "a" has a second policy (the first: latest 2)`},
		{"second precision", "model a\nprecision bf16\nprecision fp32\n", `m.conf:3: model "a" has a second precision (the first: bf16)`},
		{"specific repeats a version", "model a\npolicy specific 3 3\n", `m.conf:2: policy specific: version 3 appears twice`},
		{"model path", "model ../a\n", "m.conf:1: want `model NAME`"},
		{"unknown keyword", "model a\nversions 3\n", `m.conf:2: unknown keyword "versions"`},
		{"bad precision", "model a\nprecision fp16\n", `m.conf:2: precision "fp16": want auto, fp32 or bf16`},
		{"precision before model", "precision bf16\n", "m.conf:1: `precision` before any `model NAME` line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("m.conf", strings.NewReader(tc.text))
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrConfig containing %q", err, tc.want)
			}
		})
	}
}

func TestWarmupSizes(t *testing.T) {
	tests := []struct {
		max  int
		want []int
	}{{1, []int{1}}, {2, []int{1, 2}}, {32, []int{1, 2, 4, 8, 16, 32}}, {24, []int{1, 2, 4, 8, 16, 24}}}
	for _, tc := range tests {
		if got := WarmupSizes(tc.max); !slices.Equal(got, tc.want) {
			t.Errorf("WarmupSizes(%d): got %v, want %v", tc.max, got, tc.want)
		}
	}
}
