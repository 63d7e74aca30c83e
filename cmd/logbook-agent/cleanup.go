package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	mountinfoPath = "/proc/self/mountinfo"
	sysvipcDir    = "/proc/sysvipc"
)

// asUserOnAThread runs fn on an OS thread of its own whose credentials
// alone become uid:gid with no supplementary groups: the raw setgroups,
// setresgid and setresuid system calls change the calling thread only
// (the libc wrappers, and Go's syscall.Setuid, change them all). With
// every uid of the thread nonzero, the kernel also clears its
// capabilities, so fn has exactly the user's rights and no more. The
// goroutine ends locked to the thread, so the Go runtime ends the thread
// with it: nothing else ever runs with those credentials, and the agent
// never has to take root back.
//
// Why not a helper process as before: exec'ing one per run (a Go binary's
// start, its page faults, its path lookups through the container's
// overlay) took a third of a warm run's CPU on the machine
// (docs/benchmarks.md).
// The channel it returns receives fn's error, or why the thread could not
// take the user's credentials.
func asUserOnAThread(uid, gid uint32, fn func() error) <-chan error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := becomeOnThisThread(uid, gid); err != nil {
			done <- err
			return
		}
		done <- fn()
	}()
	return done
}

func becomeOnThisThread(uid, gid uint32) error {
	if _, _, errno := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); errno != 0 {
		return fmt.Errorf("dropping the supplementary groups: %w", errno)
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); errno != 0 {
		return fmt.Errorf("becoming gid %d: %w", gid, errno)
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); errno != 0 {
		return fmt.Errorf("becoming uid %d: %w", uid, errno)
	}
	return nil
}

// cleanUpAsRunUser removes everything its user owns on the writable
// mounts, with all it holds, and the SysV IPC objects its user owns or
// made; then checks that none is left. It runs as the run's user
// (asUserOnAThread), which can remove what root without CAP_DAC_OVERRIDE
// could not, and which no link or mode a run left behind can lead
// further than the user's own rights.
func cleanUpAsRunUser(mounts []string) error {
	uid := uint32(unix.Getuid()) // this thread's
	if uid == 0 {
		return errors.New("the clean-up runs as a run's user, never as root")
	}
	var errs []error
	for _, m := range mounts {
		errs = append(errs, walkOwned(m, uid, removeTree))
	}
	errs = append(errs, removeIPC(sysvipcDir, uid))
	// Then prove it.
	for _, m := range mounts {
		var left []string
		_ = walkOwned(m, uid, func(_ int, _ string, path string, _ *unix.Stat_t) error {
			left = append(left, path)
			return nil
		})
		if len(left) > 0 {
			errs = append(errs, fmt.Errorf("still there: %s", truncate(strings.Join(left, " "), 500)))
		}
	}
	if objects, err := sysvObjects(sysvipcDir); err != nil {
		errs = append(errs, err)
	} else if n := len(ownedBy(objects, uid)); n > 0 {
		errs = append(errs, fmt.Errorf("%d SysV IPC objects of uid %d are still there", n, uid))
	}
	return errors.Join(errs...)
}

// kernelFileSystems are mounted writable but hold nothing a run can leave
// behind once its processes are gone.
var kernelFileSystems = map[string]bool{
	"proc": true, "sysfs": true, "cgroup": true, "cgroup2": true, "devpts": true, "securityfs": true,
	"debugfs": true, "tracefs": true, "pstore": true, "bpf": true, "configfs": true, "fusectl": true, "binfmt_misc": true,
}

// writableMounts lists the directories mounted writable (in mountinfo's
// format), but for the kernel's own file systems and what lies under /proc
// and /sys: where a run could leave something.
func writableMounts(mountinfo string) ([]string, error) {
	data, err := os.ReadFile(mountinfo)
	if err != nil {
		return nil, err
	}
	var mounts []string
	for _, point := range parseWritableMounts(string(data)) {
		if fi, err := os.Lstat(point); err == nil && fi.IsDir() {
			mounts = append(mounts, point)
		}
	}
	return mounts, nil
}

// parseWritableMounts reads mountinfo lines: "id parent major:minor root
// point options [optional...] - fstype source super-options".
func parseWritableMounts(mountinfo string) []string {
	var points []string
	for _, line := range strings.Split(mountinfo, "\n") {
		fields := strings.Fields(line)
		sep := slices.Index(fields, "-")
		if sep < 6 || sep+1 >= len(fields) {
			continue
		}
		point := unescapeMountinfo(fields[4])
		writable := slices.Contains(strings.Split(fields[5], ","), "rw")
		under := func(dir string) bool { return point == dir || strings.HasPrefix(point, dir+"/") }
		if !writable || kernelFileSystems[fields[sep+1]] || under("/proc") || under("/sys") || slices.Contains(points, point) {
			continue
		}
		points = append(points, point)
	}
	slices.Sort(points)
	return points
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// visit is called for an entry uid owns: name in the directory dirFd, at
// path.
type visit func(dirFd int, name, path string, st *unix.Stat_t) error

// walkOwned calls fn for every entry under root, on root's file system,
// that uid owns, without going into it; it goes into the directories of
// others that it can read, where a world-writable one may hold the user's
// entries. It works on directory descriptors, so no depth of nesting
// defeats it, and never follows a symbolic link.
func walkOwned(root string, uid uint32, fn visit) error {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", root, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%s: %w", root, err)
	}
	return walkOwnedIn(fd, root, st.Dev, uid, fn)
}

func walkOwnedIn(dirFd int, path string, dev uint64, uid uint32, fn visit) error {
	names, err := readNames(dirFd)
	errs := []error{wrapPath(path, err)}
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(dirFd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Dev != dev {
			continue // gone, or another mount: walked on its own
		}
		child := filepath.Join(path, name)
		switch {
		case st.Uid == uid:
			errs = append(errs, fn(dirFd, name, child, &st))
		case st.Mode&unix.S_IFMT == unix.S_IFDIR:
			sub, err := unix.Openat(dirFd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				continue // another's directory the user cannot list
			}
			errs = append(errs, walkOwnedIn(sub, child, dev, uid, fn))
			unix.Close(sub)
		}
	}
	return errors.Join(errs...)
}

// removeTree removes an entry and, for a directory, all it holds: the
// user's, or another's it was able to link there. A directory the user made
// unreadable or unwritable is made its own again first.
func removeTree(dirFd int, name, path string, st *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return wrapPath(path, unix.Unlinkat(dirFd, name, 0))
	}
	_ = unix.Fchmodat(dirFd, name, 0o700, 0)
	sub, err := unix.Openat(dirFd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return wrapPath(path, err)
	}
	names, err := readNames(sub)
	errs := []error{wrapPath(path, err)}
	for _, child := range names {
		var cst unix.Stat_t
		if err := unix.Fstatat(sub, child, &cst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			errs = append(errs, wrapPath(filepath.Join(path, child), err))
			continue
		}
		errs = append(errs, removeTree(sub, child, filepath.Join(path, child), &cst))
	}
	unix.Close(sub)
	return errors.Join(append(errs, wrapPath(path, unix.Unlinkat(dirFd, name, unix.AT_REMOVEDIR)))...)
}

func wrapPath(path string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", path, err)
}

// readNames lists the entries of the directory fd, without . and ..
func readNames(fd int) ([]string, error) {
	var names []string
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.ReadDirent(fd, buf)
		if err != nil {
			return names, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// sysvObject is one SysV IPC object as /proc/sysvipc lists it.
type sysvObject struct {
	kind      string // shm, sem or msg
	id        int
	uid, cuid uint32 // its owner and its creator
}

// sysvObjects reads the SysV IPC objects of this IPC namespace from dir.
func sysvObjects(dir string) ([]sysvObject, error) {
	var objects []sysvObject
	for kind, idColumn := range map[string]string{"shm": "shmid", "sem": "semid", "msg": "msqid"} {
		data, err := os.ReadFile(filepath.Join(dir, kind))
		if err != nil {
			return nil, err
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		header := strings.Fields(lines[0])
		idAt, uidAt, cuidAt := slices.Index(header, idColumn), slices.Index(header, "uid"), slices.Index(header, "cuid")
		if idAt < 0 || uidAt < 0 || cuidAt < 0 {
			return nil, fmt.Errorf("%s/%s: unexpected columns %v", dir, kind, header)
		}
		for _, line := range lines[1:] {
			f := strings.Fields(line)
			if len(f) < len(header) {
				continue
			}
			id, err1 := strconv.Atoi(f[idAt])
			uid, err2 := strconv.ParseUint(f[uidAt], 10, 32)
			cuid, err3 := strconv.ParseUint(f[cuidAt], 10, 32)
			if err := errors.Join(err1, err2, err3); err != nil {
				return nil, fmt.Errorf("%s/%s: %q: %w", dir, kind, line, err)
			}
			objects = append(objects, sysvObject{kind: kind, id: id, uid: uint32(uid), cuid: uint32(cuid)})
		}
	}
	return objects, nil
}

func ownedBy(objects []sysvObject, uid uint32) []sysvObject {
	var owned []sysvObject
	for _, o := range objects {
		if o.uid == uid || o.cuid == uid {
			owned = append(owned, o)
		}
	}
	return owned
}

// removeIPC removes the SysV IPC objects uid owns or made: the only ones
// the kernel lets it remove.
func removeIPC(dir string, uid uint32) error {
	objects, err := sysvObjects(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range ownedBy(objects, uid) {
		var err error
		var errno unix.Errno
		switch o.kind {
		case "shm":
			_, err = unix.SysvShmCtl(o.id, unix.IPC_RMID, nil)
		case "sem":
			_, _, errno = unix.Syscall6(unix.SYS_SEMCTL, uintptr(o.id), 0, unix.IPC_RMID, 0, 0, 0)
		case "msg":
			_, _, errno = unix.Syscall(unix.SYS_MSGCTL, uintptr(o.id), unix.IPC_RMID, 0)
		}
		if errno != 0 {
			err = errno
		}
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EIDRM) {
			errs = append(errs, fmt.Errorf("removing %s %d: %w", o.kind, o.id, err))
		}
	}
	return errors.Join(errs...)
}
