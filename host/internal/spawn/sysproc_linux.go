package spawn

import "syscall"

// withDeathSignal adds SIGKILL as the parent-death signal to attr.
func withDeathSignal(attr *syscall.SysProcAttr) *syscall.SysProcAttr {
	if attr == nil {
		attr = &syscall.SysProcAttr{}
	}
	attr.Pdeathsig = syscall.SIGKILL
	return attr
}
