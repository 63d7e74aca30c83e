package main

import (
	"os/exec"
	"syscall"
)

// stopWithBench has the kernel send cmd SIGTERM when the benchmark dies,
// even by SIGKILL: the server and executor it started then stop cleanly
// and remove their warm and spare containers, instead of running on as
// orphans with them.
func stopWithBench(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
}
