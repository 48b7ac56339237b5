package precision

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestChoose(t *testing.T) {
	native, none := CPU{AVX512BF16: true}, CPU{}
	pass, fail := Gate{Passed: true, Summary: "ok"}, Gate{Passed: false, Summary: "accuracy -1.2 points"}
	tests := []struct {
		name    string
		setting Setting
		cpu     CPU
		gate    Gate
		gateErr error
		want    Precision
		why     string
	}{
		{"auto, native, gate passed", Auto, native, pass, nil, BF16, "within the accuracy gate"},
		{"auto, native, gate missed", Auto, native, fail, nil, FP32, "misses the accuracy gate: accuracy -1.2"},
		{"auto, native, no report", Auto, native, Gate{}, errors.New("no build report"), FP32, "accuracy unknown"},
		{"auto, no native bf16", Auto, none, pass, nil, FP32, "no native bf16"},
		{"fp32", Setting(FP32), native, pass, nil, FP32, "fp32 asked for"},
		{"bf16 forced on emulation", Setting(BF16), none, fail, nil, BF16, "emulates"},
		{"bf16 on amx", Setting(BF16), CPU{AMXBF16: true}, fail, nil, BF16, "amx_bf16"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, why := Choose(tc.setting, tc.cpu, tc.gate, tc.gateErr)
			if got != tc.want || !strings.Contains(why, tc.why) {
				t.Fatalf("got %s (%s), want %s saying %q", got, why, tc.want, tc.why)
			}
		})
	}
}

func TestParseSetting(t *testing.T) {
	for in, want := range map[string]Setting{"auto": Auto, "FP32": Setting(FP32), " bf16 ": Setting(BF16)} {
		if got, err := ParseSetting(in); err != nil || got != want {
			t.Fatalf("ParseSetting(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseSetting("fp16"); err == nil || !strings.Contains(err.Error(), "auto, fp32 or bf16") {
		t.Fatalf("got %v, want an error listing the choices", err)
	}
}

func TestReadGate(t *testing.T) {
	const classifier = `"fp32_accuracy": 0.9451, "bf16_accuracy": 0.945, "top1_agreement": 0.9996`
	tests := []struct {
		name, report string
		passed       bool
		summary, err string
	}{
		{"no report", "", false, "", "no build report"},
		{"corrupt", `{"bf16": {"passed": tr`, false, "", "build-report.json"},
		{"no bf16 section", `{"test_accuracy": 0.9}`, false, "", "no bf16 section"},
		{"null bf16 section", `{"bf16": null}`, false, "", "no bf16 section"},
		{"passed not a bool", `{"bf16": {"passed": "yes", ` + classifier + `}}`, false, "", "want true or false"},
		{"passed without figures", `{"bf16": {"passed": true, "summary": "s"}}`, false, "", "no fp32 and bf16 figures"},
		{"one figure of a pair", `{"bf16": {"passed": true, "fp32_map50": 0.95}}`, false, "", "only one of fp32_map50 and bf16_map50"},
		{"classifier passed", `{"bf16": {"passed": true, "summary": "s", ` + classifier + `}}`, true, "s", ""},
		{"classifier missed", `{"bf16": {"passed": false, "summary": "s", ` + classifier + `}}`, false, "s", ""},
		{"accuracy drop past 0.3 points said passed", `{"bf16": {"passed": true, "summary": "s", "fp32_accuracy": 0.9451, "bf16_accuracy": 0.9400, "top1_agreement": 0.999}}`,
			false, "but by its own figures accuracy 0.9400 bf16 is more than 0.3 points below 0.9451 fp32", ""},
		{"agreement below 99.5% said passed", `{"bf16": {"passed": true, "fp32_accuracy": 0.9451, "bf16_accuracy": 0.9451, "top1_agreement": 0.9940}}`,
			false, "top-1 agreement 0.9940 is below 0.995", ""},
		{"accuracy drop at exactly 0.3 points", `{"bf16": {"passed": true, "fp32_accuracy": 0.9451, "bf16_accuracy": 0.9421, "top1_agreement": 0.995}}`, true, "", ""},
		{"detector mAP drop past 1 point said passed", `{"bf16": {"passed": true, "fp32_map50": 0.9589, "bf16_map50": 0.9470}}`, false, "map50 0.9470 bf16 is more than 1 points below", ""},
		{"generator within 1 point", `{"bf16": {"passed": true, "fp32_conditional_accuracy": 0.9792, "bf16_conditional_accuracy": 0.9788}}`, true, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.report != "" {
				if err := os.WriteFile(filepath.Join(dir, "build-report.json"), []byte(tc.report), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			g, err := ReadGate(dir)
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("got %+v, %v; want an error saying %q", g, err, tc.err)
			case tc.err == "" && err != nil:
				t.Fatalf("got error %v, want passed %v", err, tc.passed)
			case tc.err == "" && (g.Passed != tc.passed || !strings.Contains(g.Summary, tc.summary)):
				t.Fatalf("got passed %v (%q), want %v saying %q", g.Passed, g.Summary, tc.passed, tc.summary)
			}
		})
	}
}

// TestShippedGates reads the shipped models' build reports: each passes its gate by
// its own figures, as docs/MODELS.md says, so auto may run it in bf16.
func TestShippedGates(t *testing.T) {
	for _, name := range []string{"classifier", "detector", "generator"} {
		g, err := ReadGate(filepath.Join("..", "..", "savedmodels", name, "1"))
		if err != nil || !g.Passed {
			t.Errorf("%s: got %+v, %v; want a passed gate", name, g, err)
		}
	}
}
