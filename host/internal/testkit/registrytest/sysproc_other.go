//go:build !linux

package registrytest

import "syscall"

// sysProcAttr: without a parent-death signal, only t.Cleanup stops the
// registry.
func sysProcAttr() *syscall.SysProcAttr { return nil }
