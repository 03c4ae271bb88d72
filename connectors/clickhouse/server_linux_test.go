package clickhouse

import (
	"os/exec"
	"syscall"
)

// stopWithTests makes the kernel stop the private server when the test
// binary dies without running its cleanup (a panic or a timeout).
func stopWithTests(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
