package redistest

import "syscall"

// sysProcAttr makes the kernel kill the child when the spawner thread ends.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
