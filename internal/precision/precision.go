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

	"golang.org/x/sys/cpu"
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

// CPU is what the processor offers for bf16.
type CPU struct {
	AMXBF16, AVX512BF16 bool
}

// HostCPU reads the processor's flags.
func HostCPU() CPU { return CPU{AMXBF16: cpu.X86.HasAMXBF16, AVX512BF16: cpu.X86.HasAVX512BF16} }

// NativeBF16 reports whether the CPU computes bf16 in hardware.
func (c CPU) NativeBF16() bool { return c.AMXBF16 || c.AVX512BF16 }

// String lists the bf16 flags, as /proc/cpuinfo names them.
func (c CPU) String() string {
	var flags []string
	if c.AMXBF16 {
		flags = append(flags, "amx_bf16")
	}
	if c.AVX512BF16 {
		flags = append(flags, "avx512_bf16")
	}
	if len(flags) == 0 {
		return "no native bf16"
	}
	return strings.Join(flags, " ")
}

// Gate is a model's bf16 accuracy check, from the "bf16" section of its
// build-report.json (written by `python -m atelier_train.precision`).
type Gate struct {
	// Passed says whether bf16 stayed within the model's gates.
	Passed bool `json:"passed"`
	// Summary says what was measured, for the log.
	Summary string `json:"summary"`
}

// ReadGate reads the gate from the build report in a model's folder. A model without
// one has not been checked in bf16, which is an error auto treats as a failed gate.
func ReadGate(dir string) (Gate, error) {
	data, err := os.ReadFile(filepath.Join(dir, "build-report.json"))
	if err != nil {
		return Gate{}, fmt.Errorf("no build report: %w", err)
	}
	var report struct {
		BF16 *Gate `json:"bf16"`
	}
	if err := json.Unmarshal(data, &report); err != nil {
		return Gate{}, fmt.Errorf("build-report.json: %w", err)
	}
	if report.BF16 == nil {
		return Gate{}, errors.New("build-report.json has no bf16 section (run python -m atelier_train.precision)")
	}
	return *report.BF16, nil
}

// Choose resolves a setting for one model: the precision to run in and why.
func Choose(s Setting, c CPU, gate Gate, gateErr error) (Precision, string) {
	switch s {
	case Setting(FP32):
		return FP32, "fp32 asked for"
	case Setting(BF16):
		if !c.NativeBF16() {
			return BF16, "bf16 asked for; this CPU has no native bf16, so oneDNN emulates it (slow)"
		}
		return BF16, "bf16 asked for (" + c.String() + ")"
	}
	switch {
	case !c.NativeBF16():
		return FP32, "auto: this CPU has no native bf16"
	case gateErr != nil:
		return FP32, "auto: bf16 accuracy unknown: " + gateErr.Error()
	case !gate.Passed:
		return FP32, "auto: bf16 misses the accuracy gate: " + gate.Summary
	}
	return BF16, "auto: " + c.String() + ", bf16 within the accuracy gate: " + gate.Summary
}
