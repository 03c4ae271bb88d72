package natstest

import "syscall"

// DieWithTest makes a process a test starts (a node, a feedline worker) die
// with the test binary, even one that panics or times out before its
// cleanups run.
func DieWithTest() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
