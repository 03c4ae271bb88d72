//go:build !linux

package natstest

import "syscall"

func dieWithTest() *syscall.SysProcAttr { return nil }
