//go:build !linux

package spawn

import "syscall"

// withDeathSignal: there is no parent-death signal here; the caller's
// own cleanup stops the child.
func withDeathSignal(attr *syscall.SysProcAttr) *syscall.SysProcAttr { return attr }
