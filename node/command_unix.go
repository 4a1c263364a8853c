//go:build unix

package node

import (
	"os/exec"
	"syscall"
)

// isolate runs cmd in its own process group and makes ending it end the
// whole group, so a timed-out command's children do not linger.
func isolate(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(cmd.SysProcAttr)
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
