package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// How long the agent waits for the run's processes to be gone, and for the
// clean-up.
const (
	endTimeout     = 5 * time.Second
	cleanUpTimeout = 30 * time.Second
)

// containerIsolation is the agent's isolation inside a warm container. The
// agent runs as root holding only CAP_SETUID, CAP_SETGID and CAP_KILL; each
// command runs as its run's unprivileged user, so it can neither signal
// nor trace the agent. After the run the agent kills every process but
// init and itself, removes what the run's user owns on a thread running as
// that user (cleanup.go: it can, where root without CAP_DAC_OVERRIDE could
// not), and then proves the container is as it was when the agent started:
// no other process, the same entries at the top of each writable mount, the
// same SysV IPC objects. A container it cannot prove clean is retired by
// the host.
type containerIsolation struct {
	self   int
	mounts []string // the writable mounts, cleaned after each run

	// What the container held when the agent started.
	entries    map[string][]string
	entriesErr error
	ipcObjects int
}

func newContainerIsolation() (*containerIsolation, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("the agent runs as uid %d; it must run as root to run each command as its own user", os.Geteuid())
	}
	mounts, err := writableMounts(mountinfoPath)
	if err != nil {
		return nil, err
	}
	c := &containerIsolation{self: os.Getpid(), mounts: mounts, entries: map[string][]string{}}
	for _, m := range mounts {
		names, err := dirNames(m)
		if err != nil {
			// Every clean-up will then fail, and retire the container.
			c.entriesErr = errors.Join(c.entriesErr, err)
		}
		c.entries[m] = names
	}
	objects, err := sysvObjects(sysvipcDir)
	if err != nil {
		return nil, err
	}
	c.ipcObjects = len(objects)
	reserveThreads(4)
	return c, nil
}

// reserveThreads has the Go runtime start n threads now and keep them idle.
// Threads count against the container's pids limit: a fork bomb that
// filled it would otherwise crash the agent the next time the runtime
// needed a thread.
func reserveThreads(n int) {
	var locked, release sync.WaitGroup
	locked.Add(n)
	release.Add(1)
	for range n {
		go func() {
			runtime.LockOSThread() // a thread of its own until unlocked
			locked.Done()
			release.Wait()
			runtime.UnlockOSThread() // the thread goes idle, not away
		}()
	}
	locked.Wait()
	release.Done()
}

func (c *containerIsolation) prepare(cmd *exec.Cmd, uid, gid int64, workDir string) error {
	// The run's user works in the agent's work dir; the clean-up, as that
	// user, empties it and the agent, which owns it, removes it.
	if err := os.Chmod(workDir, 0o777); err != nil {
		return err
	}
	// No Groups: the command gets none of the agent's supplementary groups.
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	return nil
}

// endAll kills every process but init and the agent. kill(-1) reaches them
// all at once, in the run's process group or not (setsid, double forks),
// and a process with SIGKILL pending cannot fork, so none escapes; init
// reaps them.
func (c *containerIsolation) endAll(int) error {
	deadline := time.Now().Add(endTimeout)
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		if err := unix.Kill(-1, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("killing the run's processes: %w", err)
		}
		left, err := c.others()
		if err != nil || len(left) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still run %v after being killed", left, endTimeout)
		}
		time.Sleep(pause)
	}
}

// others lists the processes other than init and the agent.
func (c *containerIsolation) others() ([]int, error) {
	names, err := dirNames("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, name := range names {
		if pid, err := strconv.Atoi(name); err == nil && pid != 1 && pid != c.self {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func (c *containerIsolation) cleanUp(uid, gid int64, workDir string) error {
	var errs []error
	cleaned := asUserOnAThread(uint32(uid), uint32(gid), func() error { return cleanUpAsRunUser(c.mounts) })
	t := time.NewTimer(cleanUpTimeout)
	defer t.Stop()
	select {
	case err := <-cleaned:
		if err != nil {
			errs = append(errs, fmt.Errorf("cleaning up as uid %d: %w", uid, err))
		}
	case <-t.C:
		// The walk goes on in the background; the container is retired.
		errs = append(errs, fmt.Errorf("cleaning up as uid %d took more than %v", uid, cleanUpTimeout))
	}
	if err := unix.Rmdir(workDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("removing the work dir %s: %w", workDir, err))
	}
	errs = append(errs, c.verify())
	return errors.Join(errs...)
}

// verify proves the container is as it was when the agent started.
func (c *containerIsolation) verify() error {
	errs := []error{c.entriesErr}
	if left, err := c.others(); err != nil || len(left) > 0 {
		errs = append(errs, errors.Join(err, fmtErrIf(len(left) > 0, "processes %v are left", left)))
	}
	for _, m := range c.mounts {
		names, err := dirNames(m)
		if err != nil || !slices.Equal(names, c.entries[m]) {
			errs = append(errs, errors.Join(err, fmt.Errorf("%s holds %s, and held %s", m, truncate(strings.Join(names, " "), 200), truncate(strings.Join(c.entries[m], " "), 200))))
		}
	}
	objects, err := sysvObjects(sysvipcDir)
	if err != nil || len(objects) != c.ipcObjects {
		errs = append(errs, errors.Join(err, fmt.Errorf("%d SysV IPC objects are left, and there were %d", len(objects), c.ipcObjects)))
	}
	return errors.Join(errs...)
}

func fmtErrIf(cond bool, format string, args ...any) error {
	if !cond {
		return nil
	}
	return fmt.Errorf(format, args...)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// dirNames lists a directory's entries, sorted.
func dirNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, err
}
