//go:build !(linux && amd64)

package precision

import "errors"

// requestAMX: AMX needs the kernel's leave, which only Linux on amd64 asks for here.
func requestAMX() error { return errors.New("AMX is used only on Linux on amd64") }
