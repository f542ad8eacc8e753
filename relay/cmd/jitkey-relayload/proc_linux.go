package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the child relay die if the load program is killed.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
