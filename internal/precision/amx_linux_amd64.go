package precision

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// requestAMX asks Linux for the AMX tile-data state, as oneDNN does before its first
// AMX kernel (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA; granted per process
// and asking again is harmless). Linux before 5.16, a hypervisor that leaves the tile
// state out of XCR0, or a seccomp policy refuse it; oneDNN then runs its AVX-512
// kernels, so the AMX flag must not count.
func requestAMX() error {
	const archReqXcompPerm, xfeatureXtiledata = 0x1023, 18
	if _, _, errno := unix.Syscall(unix.SYS_ARCH_PRCTL, archReqXcompPerm, xfeatureXtiledata, 0); errno != 0 {
		return fmt.Errorf("arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA): %w", errno)
	}
	return nil
}
