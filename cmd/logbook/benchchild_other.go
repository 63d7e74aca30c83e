//go:build !linux

package main

import "os/exec"

// stopWithBench does nothing where the kernel cannot signal a child when
// its parent dies; stop the benchmark with Ctrl-C there.
func stopWithBench(cmd *exec.Cmd) {}
