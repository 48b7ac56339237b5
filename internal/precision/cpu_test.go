package precision

import (
	"errors"
	"strings"
	"testing"
)

func TestHostCPU(t *testing.T) {
	granted, refused := func() error { return nil }, func() error { return errors.New("arch_prctl: operation not supported") }
	tests := []struct {
		name        string
		amx, avx512 bool
		request     func() error
		env         map[string]string
		want        CPU
		says        string
	}{
		{"avx512_bf16 alone (AMD EPYC)", false, true, granted, nil, CPU{AVX512BF16: true}, "avx512_bf16"},
		{"amx granted", true, true, granted, nil, CPU{AMXBF16: true, AVX512BF16: true}, "amx_bf16 avx512_bf16"},
		// Linux before 5.16, or a hypervisor without the tile state: oneDNN falls
		// back to its AVX-512 kernels, so AMX must not be claimed.
		{"amx refused by the kernel", true, true, refused, nil, CPU{AVX512BF16: true}, "amx_bf16 unusable: arch_prctl"},
		{"amx refused, no avx512_bf16", true, false, refused, nil, CPU{}, "no native bf16 (amx_bf16 unusable"},
		{"oneDNN capped below bf16", true, true, granted, map[string]string{"ONEDNN_MAX_CPU_ISA": "avx512_core_vnni"}, CPU{},
			"no native bf16 (avx512_bf16 unused: ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI; amx_bf16 unused"},
		{"oneDNN capped below AMX", true, true, granted, map[string]string{"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, CPU{AVX512BF16: true}, "amx_bf16 unused"},
		{"old DNNL name", false, true, granted, map[string]string{"DNNL_MAX_CPU_ISA": "AVX2"}, CPU{}, "DNNL_MAX_CPU_ISA=AVX2"},
		{"ONEDNN wins over DNNL", false, true, granted, map[string]string{"ONEDNN_MAX_CPU_ISA": "ALL", "DNNL_MAX_CPU_ISA": "AVX2"}, CPU{AVX512BF16: true}, "avx512_bf16"},
		{"a value oneDNN ignores", false, true, granted, map[string]string{"ONEDNN_MAX_CPU_ISA": "BOGUS"}, CPU{AVX512BF16: true}, "avx512_bf16"},
		{"amx cap keeps amx", true, true, granted, map[string]string{"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}, CPU{AMXBF16: true, AVX512BF16: true}, "amx_bf16"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			asked := false
			request := func() error { asked = true; return tc.request() }
			got := hostCPU(tc.amx, tc.avx512, request, func(k string) string { return tc.env[k] })
			if got.AMXBF16 != tc.want.AMXBF16 || got.AVX512BF16 != tc.want.AVX512BF16 || !strings.Contains(got.String(), tc.says) {
				t.Fatalf("got %+v (%s), want %+v saying %q", got, got, tc.want, tc.says)
			}
			if asked != tc.amx {
				t.Fatalf("asked the kernel for AMX: %v, want %v (the CPU has AMX: %v)", asked, tc.amx, tc.amx)
			}
		})
	}
}

// TestAutoUnderISACap: a cap that leaves oneDNN without native bf16 makes auto run
// fp32 even on a CPU whose flags have bf16, saying why.
func TestAutoUnderISACap(t *testing.T) {
	c := hostCPU(false, true, nil, func(k string) string {
		return map[string]string{"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}[k]
	})
	p, why := Choose(Auto, c, Gate{Passed: true}, nil)
	if p != FP32 || !strings.Contains(why, "ONEDNN_MAX_CPU_ISA=AVX512_CORE") {
		t.Fatalf("got %s (%s), want fp32 naming the cap", p, why)
	}
}
