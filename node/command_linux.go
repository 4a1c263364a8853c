package node

import "syscall"

// setParentDeathSignal has the kernel kill the command if the agent dies
// (even by SIGKILL), so no work runs on for a job the server will retry
// elsewhere.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
