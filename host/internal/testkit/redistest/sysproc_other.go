//go:build !linux

package redistest

import "syscall"

// sysProcAttr: without a parent-death signal, only t.Cleanup and Cleanup stop
// the children.
func sysProcAttr() *syscall.SysProcAttr { return nil }
