package natstest

import "syscall"

// dieWithTest makes a node die with the test binary, even one that panics
// or times out before its cleanups run.
func dieWithTest() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
