//go:build linux

package coordinator

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel send the worker SIGTERM if this process
// dies, so `iop run --local` never leaves workers behind.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
}
