// Package precision decides the arithmetic each model runs in: fp32, or bfloat16
// through oneDNN's graph rewrite (fp32 accumulation) on CPUs with native bf16
// (AMX-BF16 or AVX512-BF16). Under the default setting, auto, a model runs in bf16
// only where the CPU has it natively and the model's build report shows that bf16
// keeps its accuracy within the gates; otherwise it runs in fp32 and the reason is
// logged.
package precision

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Precision is what a model's session runs in.
type Precision string

// The precisions.
const (
	FP32 Precision = "fp32"
	BF16 Precision = "bf16"
)

// Setting is what the operator asks for: a precision, or Auto.
type Setting string

// Auto picks bf16 where the CPU has it natively and the model passes its gate.
const Auto Setting = "auto"

// ParseSetting reads auto, fp32 or bf16.
func ParseSetting(s string) (Setting, error) {
	switch v := Setting(strings.ToLower(strings.TrimSpace(s))); v {
	case Auto, Setting(FP32), Setting(BF16):
		return v, nil
	}
	return "", fmt.Errorf("precision %q: want auto, fp32 or bf16", s)
}

// Gate is a model's bf16 accuracy check, from the "bf16" section of its
// build-report.json (written by `python -m atelier_train.precision`).
type Gate struct {
	// Passed says whether bf16 stayed within the model's gates.
	Passed bool
	// Summary says what was measured, for the log.
	Summary string
}

// The gates of docs/MODELS.md, by the figures a bf16 section holds: bf16 may fall
// below fp32 by at most this many points (hundredths). The build report rounds its
// figures to 4 decimals, so a figure may be off by up to rounding.
var pointGates = []struct {
	metric string
	points float64
}{{"accuracy", 0.3}, {"map50", 1}, {"conditional_accuracy", 1}}

const (
	minAgreement = 0.995 // the classifier's top-1 agreement with fp32
	rounding     = 1e-4
)

// ReadGate reads the gate from the build report in a model's folder. A model without
// one has not been checked in bf16, which is an error auto treats as a failed gate.
// The report's own verdict counts only where its figures bear it out: a section that
// says passed with no figures, or with figures outside the gates (a hand edit, or the
// gates changed since), does not let auto choose bf16.
func ReadGate(dir string) (Gate, error) {
	data, err := os.ReadFile(filepath.Join(dir, "build-report.json"))
	if err != nil {
		return Gate{}, fmt.Errorf("no build report: %w", err)
	}
	var report struct {
		BF16 map[string]any `json:"bf16"`
	}
	if err := json.Unmarshal(data, &report); err != nil {
		return Gate{}, fmt.Errorf("build-report.json: %w", err)
	}
	sec := report.BF16
	if sec == nil {
		return Gate{}, errors.New("build-report.json has no bf16 section (run python -m atelier_train.precision)")
	}
	passed, ok := sec["passed"].(bool)
	if !ok {
		return Gate{}, fmt.Errorf("build-report.json: bf16 passed is %v, want true or false", sec["passed"])
	}
	var g Gate
	g.Summary, _ = sec["summary"].(string)
	var missed []string
	measured := false
	for _, pg := range pointGates {
		fp32, ok32 := sec["fp32_"+pg.metric].(float64)
		bf16, ok16 := sec["bf16_"+pg.metric].(float64)
		if ok32 != ok16 {
			return Gate{}, fmt.Errorf("build-report.json: bf16 section has only one of fp32_%s and bf16_%s as a number", pg.metric, pg.metric)
		}
		if !ok32 {
			continue
		}
		measured = true
		if bf16 < fp32-pg.points/100-rounding {
			missed = append(missed, fmt.Sprintf("%s %.4f bf16 is more than %g points below %.4f fp32", pg.metric, bf16, pg.points, fp32))
		}
	}
	if agreement, ok := sec["top1_agreement"].(float64); ok {
		measured = true
		if agreement < minAgreement-rounding {
			missed = append(missed, fmt.Sprintf("top-1 agreement %.4f is below %g", agreement, minAgreement))
		}
	}
	switch {
	case !measured:
		return Gate{}, errors.New("build-report.json: bf16 section holds no fp32 and bf16 figures to check its verdict by")
	case passed && len(missed) > 0:
		g.Summary += "; the report says passed, but by its own figures " + strings.Join(missed, ", ")
	default:
		g.Passed = passed
	}
	return g, nil
}

// Choose resolves a setting for one model: the precision to run in and why.
func Choose(s Setting, c CPU, gate Gate, gateErr error) (Precision, string) {
	switch s {
	case Setting(FP32):
		return FP32, "fp32 asked for"
	case Setting(BF16):
		if !c.NativeBF16() {
			return BF16, "bf16 asked for; " + c.String() + ", so oneDNN emulates it (slow)"
		}
		return BF16, "bf16 asked for (" + c.String() + ")"
	}
	switch {
	case !c.NativeBF16():
		return FP32, "auto: " + c.String()
	case gateErr != nil:
		return FP32, "auto: bf16 accuracy unknown: " + gateErr.Error()
	case !gate.Passed:
		return FP32, "auto: bf16 misses the accuracy gate: " + gate.Summary
	}
	return BF16, "auto: " + c.String() + ", bf16 within the accuracy gate: " + gate.Summary
}
