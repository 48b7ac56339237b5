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
	dir := t.TempDir()
	if _, err := ReadGate(dir); err == nil {
		t.Fatal("no report: got no error")
	}
	os.WriteFile(filepath.Join(dir, "build-report.json"), []byte(`{"test_accuracy": 0.9}`), 0o644)
	if _, err := ReadGate(dir); err == nil || !strings.Contains(err.Error(), "no bf16 section") {
		t.Fatalf("report without bf16: got %v", err)
	}
	os.WriteFile(filepath.Join(dir, "build-report.json"), []byte(`{"bf16": {"passed": true, "summary": "s"}}`), 0o644)
	if g, err := ReadGate(dir); err != nil || !g.Passed || g.Summary != "s" {
		t.Fatalf("got %+v, %v", g, err)
	}
}
