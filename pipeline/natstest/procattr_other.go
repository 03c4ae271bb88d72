//go:build !linux

package natstest

import "syscall"

// DieWithTest is nil where there is no parent-death signal: such processes
// are stopped by the test's cleanups only.
func DieWithTest() *syscall.SysProcAttr { return nil }
