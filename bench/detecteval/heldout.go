package detecteval

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
)

// WriteHeldOut runs the project's scene command to write n held-out scenes (test-split
// items only, the default seed) into dir: python is the interpreter, savedmodels the
// folder holding atelier_train. size is "WxH" for scenes of one size, or "" for the
// command's varied sizes.
func WriteHeldOut(python, savedmodels, dir string, n int, size string) error {
	args := []string{"-m", "atelier_train.scenes", "--heldout", strconv.Itoa(n), "--out", dir}
	if size != "" {
		args = append(args, "--size", size)
	}
	cmd := exec.Command(python, args...)
	cmd.Dir = savedmodels
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("detecteval: %s %v: %v\n%s", python, args, err, out)
	}
	return nil
}
