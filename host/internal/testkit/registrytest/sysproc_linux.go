package registrytest

import "syscall"

// sysProcAttr makes the kernel kill the registry when the thread that
// started it ends.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
