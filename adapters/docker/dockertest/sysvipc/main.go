// Command sysvipc makes one SysV shared memory segment, one semaphore set
// and one message queue, owned by whoever runs it, and prints their ids.
// Tests put it in an image to check that a warm run's IPC objects do not
// outlive it; busybox has no applet that makes them.
package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	shm, err := unix.SysvShmGet(unix.IPC_PRIVATE, 4096, unix.IPC_CREAT|0o600)
	if err != nil {
		fail("shmget", err)
	}
	sem, _, errno := unix.Syscall(unix.SYS_SEMGET, unix.IPC_PRIVATE, 1, unix.IPC_CREAT|0o600)
	if errno != 0 {
		fail("semget", errno)
	}
	msg, _, errno := unix.Syscall(unix.SYS_MSGGET, unix.IPC_PRIVATE, unix.IPC_CREAT|0o600, 0)
	if errno != 0 {
		fail("msgget", errno)
	}
	fmt.Printf("shm %d sem %d msg %d\n", shm, sem, msg)
}

func fail(call string, err error) {
	fmt.Fprintf(os.Stderr, "sysvipc: %s: %v\n", call, err)
	os.Exit(1)
}
