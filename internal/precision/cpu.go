package precision

import (
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/cpu"
)

// CPU is what the processor offers for bf16, as far as TensorFlow's oneDNN in this
// process can use it.
type CPU struct {
	AMXBF16, AVX512BF16 bool
	// Unused names the bf16 flags the processor reports that oneDNN will not use here,
	// and why; empty when there are none.
	Unused string
}

// HostCPU reads the processor's bf16 flags once. A flag counts only where oneDNN will
// use it: AMX needs the kernel's leave to use the tile registers (requestAMX), and
// ONEDNN_MAX_CPU_ISA (or DNNL_MAX_CPU_ISA) can cap oneDNN below either flag. CPUID
// alone, which is all golang.org/x/sys/cpu reads for AMX, would claim bf16 that oneDNN
// then emulates. oneDNN reads its cap once per process too, so once is enough.
var HostCPU = sync.OnceValue(func() CPU {
	return hostCPU(cpu.X86.HasAMXBF16 && cpu.X86.HasAMXTile, cpu.X86.HasAVX512BF16, requestAMX, os.Getenv)
})

// hostCPU is HostCPU with the CPUID flags, the AMX request and the environment given.
func hostCPU(amx, avx512 bool, requestAMX func() error, getenv func(string) string) CPU {
	c := CPU{AVX512BF16: avx512}
	var unused []string
	if amx {
		if err := requestAMX(); err != nil {
			unused = append(unused, "amx_bf16 unusable: "+err.Error())
		} else {
			c.AMXBF16 = true
		}
	}
	env, isa := "ONEDNN_MAX_CPU_ISA", strings.ToUpper(strings.TrimSpace(getenv("ONEDNN_MAX_CPU_ISA")))
	if isa == "" {
		env, isa = "DNNL_MAX_CPU_ISA", strings.ToUpper(strings.TrimSpace(getenv("DNNL_MAX_CPU_ISA")))
	}
	capped := func(flag string) string { return flag + " unused: " + env + "=" + isa }
	if c.AVX512BF16 && isaBelowBF16[isa] {
		c.AVX512BF16 = false
		unused = append(unused, capped("avx512_bf16"))
	}
	if c.AMXBF16 && (isaBelowBF16[isa] || isaBelowAMX[isa]) {
		c.AMXBF16 = false
		unused = append(unused, capped("amx_bf16"))
	}
	c.Unused = strings.Join(unused, "; ")
	return c
}

// The values of oneDNN's ISA cap (ONEDNN_MAX_CPU_ISA, read case-blind) that leave out
// its native bf16 kernels, or only its AMX ones. oneDNN ignores a value it does not
// know, and so does HostCPU.
var (
	isaBelowBF16 = set("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")
	isaBelowAMX  = set("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512", "AVX10_2_512")
)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// NativeBF16 reports whether oneDNN computes bf16 in hardware here.
func (c CPU) NativeBF16() bool { return c.AMXBF16 || c.AVX512BF16 }

// String lists the bf16 flags in use, as /proc/cpuinfo names them, and those left out.
func (c CPU) String() string {
	var flags []string
	if c.AMXBF16 {
		flags = append(flags, "amx_bf16")
	}
	if c.AVX512BF16 {
		flags = append(flags, "avx512_bf16")
	}
	s := strings.Join(flags, " ")
	if len(flags) == 0 {
		s = "no native bf16"
	}
	if c.Unused != "" {
		s += " (" + c.Unused + ")"
	}
	return s
}
