package models

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/atelier-vision/atelier/internal/errkind"
	"github.com/atelier-vision/atelier/internal/precision"
)

// ErrConfig marks a --model-config file that cannot be used; the message names the
// file and line.
var ErrConfig = errkind.New(errkind.Invalid, "bad model config")

// ErrRepository marks a --model-dir that cannot be listed (gone, unmounted,
// unreadable): a rescan asked for then fails, and what is loaded serves on.
var ErrRepository = errkind.New(errkind.FailedPrecondition, "the model repository cannot be read")

// Config is the repository config file (--model-config): a version policy and version
// labels per model. A model it does not name gets DefaultPolicy and no labels.
//
// The format is line-based, for editing by hand; '#' starts a comment:
//
//	model classifier
//	  policy latest 2        # or: all, or: specific 3 4
//	  label stable 3
//	  label canary 4
//	  precision fp32         # or: bf16, auto; default: atelierd --precision
//	model generator
//	  policy all
type Config struct {
	Models map[string]ModelConfig
}

// ModelConfig is one model's section of the config file.
type ModelConfig struct {
	Policy Policy
	Labels map[string]int64
	// Precision overrides atelierd's --precision for this model; empty: no override.
	Precision precision.Setting
}

// PolicyKind is how a policy chooses versions.
type PolicyKind int

// The policy kinds, as in TensorFlow Serving's model_version_policy.
const (
	Latest   PolicyKind = iota // the N newest versions
	All                        // every version
	Specific                   // the listed versions
)

// Policy chooses which of a model's complete versions to serve.
type Policy struct {
	Kind     PolicyKind
	N        int
	Versions []int64
}

// DefaultPolicy serves the newest version only, as TensorFlow Serving does.
var DefaultPolicy = Policy{Kind: Latest, N: 1}

// String returns the policy in the config file's words.
func (p Policy) String() string {
	switch p.Kind {
	case All:
		return "all"
	case Specific:
		parts := []string{"specific"}
		for _, v := range p.Versions {
			parts = append(parts, strconv.FormatInt(v, 10))
		}
		return strings.Join(parts, " ")
	}
	return fmt.Sprintf("latest %d", p.N)
}

// choose returns the versions the policy wants out of the candidates (newest first).
func (p Policy) choose(candidates []int64) []int64 {
	switch p.Kind {
	case All:
		return candidates
	case Specific:
		var out []int64
		for _, v := range candidates {
			if slices.Contains(p.Versions, v) {
				out = append(out, v)
			}
		}
		return out
	}
	return candidates[:min(p.N, len(candidates))]
}

// Model returns a model's config, with the default policy for a model the file does
// not name.
func (c Config) Model(name string) ModelConfig {
	if mc, ok := c.Models[name]; ok {
		return mc
	}
	return ModelConfig{Policy: DefaultPolicy}
}

// ReadConfig reads and checks a config file; an empty path is the empty config.
func ReadConfig(path string) (Config, error) {
	if path == "" {
		return Config{}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	defer f.Close()
	return ParseConfig(path, f)
}

// ParseConfig parses the config format; an error names the file and line.
func ParseConfig(name string, r io.Reader) (Config, error) {
	c := Config{Models: map[string]ModelConfig{}}
	var cur string
	// A second policy or precision line would silently win over the first; a
	// hand-edited file more likely means one of them, so both are refused.
	hasPolicy := map[string]bool{}
	s := bufio.NewScanner(r)
	for line := 1; s.Scan(); line++ {
		text, _, _ := strings.Cut(s.Text(), "#")
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%w: %s:%d: %s", ErrConfig, name, line, fmt.Sprintf(format, a...))
		}
		switch f[0] {
		case "model":
			if len(f) != 2 || strings.ContainsAny(f[1], "/\\") || strings.HasPrefix(f[1], ".") {
				return c, bad("want `model NAME` (the model's folder name), got %q", strings.TrimSpace(text))
			}
			if _, dup := c.Models[f[1]]; dup {
				return c, bad("model %q appears twice", f[1])
			}
			cur = f[1]
			c.Models[cur] = ModelConfig{Policy: DefaultPolicy, Labels: map[string]int64{}}
		case "policy":
			if cur == "" {
				return c, bad("`policy` before any `model NAME` line")
			}
			if hasPolicy[cur] {
				return c, bad("model %q has a second policy (the first: %s)", cur, c.Models[cur].Policy)
			}
			p, err := parsePolicy(f[1:])
			if err != nil {
				return c, bad("%v", err)
			}
			hasPolicy[cur] = true
			mc := c.Models[cur]
			mc.Policy = p
			c.Models[cur] = mc
		case "label":
			if cur == "" {
				return c, bad("`label` before any `model NAME` line")
			}
			if len(f) != 3 {
				return c, bad("want `label NAME VERSION`, for example `label stable 3`")
			}
			if !labelPattern.MatchString(f[1]) {
				return c, bad("%q is not a label (1 to 64 of a-z, 0-9, '-', '_', starting with a letter)", f[1])
			}
			v, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil || v <= 0 {
				return c, bad("label %s: version %q is not a positive number", f[1], f[2])
			}
			if _, dup := c.Models[cur].Labels[f[1]]; dup {
				return c, bad("label %q of model %q appears twice", f[1], cur)
			}
			c.Models[cur].Labels[f[1]] = v
		case "precision":
			if cur == "" {
				return c, bad("`precision` before any `model NAME` line")
			}
			if len(f) != 2 {
				return c, bad("want `precision auto`, `precision fp32` or `precision bf16`")
			}
			if first := c.Models[cur].Precision; first != "" {
				return c, bad("model %q has a second precision (the first: %s)", cur, first)
			}
			p, err := precision.ParseSetting(f[1])
			if err != nil {
				return c, bad("%v", err)
			}
			mc := c.Models[cur]
			mc.Precision = p
			c.Models[cur] = mc
		default:
			return c, bad("unknown keyword %q (want model, policy, label or precision)", f[0])
		}
	}
	if err := s.Err(); err != nil {
		return c, fmt.Errorf("%w: %s: %v", ErrConfig, name, err)
	}
	return c, nil
}

func parsePolicy(args []string) (Policy, error) {
	if len(args) == 0 {
		return Policy{}, fmt.Errorf("want `policy latest N`, `policy all` or `policy specific V...`")
	}
	switch args[0] {
	case "all":
		if len(args) != 1 {
			return Policy{}, fmt.Errorf("`policy all` takes no arguments")
		}
		return Policy{Kind: All}, nil
	case "latest":
		n := 1
		if len(args) > 2 {
			return Policy{}, fmt.Errorf("want `policy latest N`")
		}
		if len(args) == 2 {
			var err error
			if n, err = strconv.Atoi(args[1]); err != nil || n < 1 {
				return Policy{}, fmt.Errorf("policy latest: %q is not a count of at least 1", args[1])
			}
		}
		return Policy{Kind: Latest, N: n}, nil
	case "specific":
		if len(args) < 2 {
			return Policy{}, fmt.Errorf("`policy specific` needs at least one version")
		}
		p := Policy{Kind: Specific}
		for _, a := range args[1:] {
			v, err := strconv.ParseInt(a, 10, 64)
			if err != nil || v <= 0 {
				return Policy{}, fmt.Errorf("policy specific: %q is not a positive version number", a)
			}
			if slices.Contains(p.Versions, v) {
				return Policy{}, fmt.Errorf("policy specific: version %d appears twice", v)
			}
			p.Versions = append(p.Versions, v)
		}
		slices.Sort(p.Versions)
		slices.Reverse(p.Versions)
		return p, nil
	}
	return Policy{}, fmt.Errorf("unknown policy %q (want latest N, all or specific V...)", args[0])
}
