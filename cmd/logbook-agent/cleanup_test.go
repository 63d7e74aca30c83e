package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/logbookhq/logbook/internal/testenv"
)

// What a warm container's mountinfo looks like (Docker 20.10, a read-only
// root, cgroup v1), trimmed.
const containerMountinfo = `72 48 0:40 / / ro,noatime master:2 - fuse.fuse-overlayfs fuse-overlayfs rw,user_id=0,group_id=0,default_permissions,allow_other
73 72 0:42 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
74 72 0:43 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
75 74 0:44 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620,ptmxmode=666
76 72 0:45 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
77 76 0:46 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
85 77 0:36 /docker/cc15 /sys/fs/cgroup/pids ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,pids
87 74 0:41 / /dev/mqueue rw,nosuid,nodev,noexec,relatime - mqueue mqueue rw
88 74 0:47 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k
89 72 0:48 / /tmp rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw
90 72 254:0 /var/lib/docker/containers/cc15/hosts /etc/hosts ro,relatime - ext4 /dev/vda rw
93 72 254:0 /host/agent /.logbook/agent ro,relatime - ext4 /dev/vda rw
94 72 0:51 / /data\040dir rw,relatime shared:7 - ext4 /dev/vdb rw
54 73 0:43 /null /proc/keys rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
`

func TestTheWritableMountsAreWhereARunCanLeaveSomething(t *testing.T) {
	t.Parallel()
	got := parseWritableMounts(containerMountinfo)
	want := []string{"/data dir", "/dev", "/dev/mqueue", "/dev/shm", "/tmp"}
	if !slices.Equal(got, want) {
		t.Fatalf("writable mounts %q, want %q", got, want)
	}
}

func TestSysVIPCObjectsAreReadWithTheirOwnerAndCreator(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"shm": "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n" +
			"         0          3   600                  4096    12    12      0 65534 65534 65534 65534          0          0 1796529064                     0                     0\n",
		"sem": "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n" +
			"         0          1   600          1  1000  1000 65534 65534          0 1796529064\n",
		"msg": "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	objects, err := sysvObjects(dir)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(objects, func(a, b sysvObject) int { return strings.Compare(a.kind, b.kind) })
	want := []sysvObject{{kind: "sem", id: 1, uid: 1000, cuid: 65534}, {kind: "shm", id: 3, uid: 65534, cuid: 65534}}
	if !slices.Equal(objects, want) {
		t.Fatalf("objects %+v, want %+v", objects, want)
	}
	// A semaphore set given away to uid 1000 is still its creator's.
	if owned := ownedBy(objects, 65534); len(owned) != 2 {
		t.Fatalf("owned by 65534: %+v, want both", owned)
	}
	if owned := ownedBy(objects, 1000); len(owned) != 1 || owned[0].kind != "sem" {
		t.Fatalf("owned by 1000: %+v, want the semaphore set", owned)
	}
}

// The clean-up removes what its user owns however it was left: deeper than
// a path can name, made unreadable, behind a symbolic link; and nothing
// else. Entries of another user need root to make, so that part runs only
// as root.
func TestTheCleanUpRemovesEverythingItsUserOwnsAndNothingElse(t *testing.T) {
	t.Parallel()
	mount, outside := t.TempDir(), t.TempDir()
	uid := uint32(os.Getuid())
	mustDo := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustDo(os.WriteFile(filepath.Join(mount, "left"), []byte("secret"), 0o600))
	mustDo(os.WriteFile(filepath.Join(outside, "kept"), nil, 0o600))
	mustDo(os.Symlink(outside, filepath.Join(mount, "link")))
	mustDo(os.MkdirAll(filepath.Join(mount, "locked", "inner"), 0o700))
	mustDo(os.WriteFile(filepath.Join(mount, "locked", "inner", "f"), nil, 0o600))
	mustDo(os.Chmod(filepath.Join(mount, "locked", "inner"), 0))
	mustDo(os.Chmod(filepath.Join(mount, "locked"), 0))
	// 300 levels of 20 characters: far past PATH_MAX.
	deep, err := unix.Open(mount, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	mustDo(err)
	for range 300 {
		mustDo(unix.Mkdirat(deep, "a-rather-long-name-x", 0o700))
		next, err := unix.Openat(deep, "a-rather-long-name-x", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		mustDo(err)
		unix.Close(deep)
		deep = next
	}
	unix.Close(deep)
	var others []string
	if uid == 0 {
		// A world-writable directory of another user, holding an entry of
		// ours and one of theirs.
		shared := filepath.Join(mount, "shared")
		mustDo(os.Mkdir(shared, 0o777))
		mustDo(os.WriteFile(filepath.Join(shared, "ours"), nil, 0o600))
		mustDo(os.WriteFile(filepath.Join(shared, "theirs"), nil, 0o600))
		mustDo(os.Chown(filepath.Join(shared, "theirs"), 12345, 12345))
		mustDo(os.Chown(shared, 12345, 12345))
		others = []string{"shared", "shared/theirs"}
	}

	if err := walkOwned(mount, uid, removeTree); err != nil {
		t.Fatal(err)
	}
	var left []string
	mustDo(filepath.WalkDir(mount, func(path string, _ os.DirEntry, err error) error {
		if rel, _ := filepath.Rel(mount, path); rel != "." {
			left = append(left, rel)
		}
		return err
	}))
	if !slices.Equal(left, others) {
		t.Fatalf("left %q, want %q", left, others)
	}
	if _, err := os.Stat(filepath.Join(outside, "kept")); err != nil {
		t.Fatalf("the clean-up followed a link out of its mount: %v", err)
	}
}

// The clean-up runs as the run's user on a thread of its own: there it has
// the user's ids, no groups and no privilege; the rest of the agent stays
// root; and the thread is gone once it is done, so nothing else ever runs
// with the user's credentials.
func TestTheCleanUpThreadHasTheRunsUserAndOnlyIt(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching a thread to another user needs root (CI runs the tests as root)")
	}
	const uid, gid = 65534, 65533
	mustDo := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Not under t.TempDir, whose parent only root may enter.
	dir, err := os.MkdirTemp("", "logbook-agent-clean-up-")
	mustDo(err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	mustDo(os.Chmod(dir, 0o777))
	rootOnly := filepath.Join(dir, "root-only")
	mustDo(os.WriteFile(rootOnly, []byte("secret"), 0o600))

	var seenUID, seenGID int
	var groups []int
	var readErr error
	err = <-asUserOnAThread(uid, gid, func() error {
		seenUID, seenGID = unix.Getuid(), unix.Getgid()
		var err error
		if groups, err = unix.Getgroups(); err != nil {
			return err
		}
		_, readErr = os.ReadFile(rootOnly)
		return os.WriteFile(filepath.Join(dir, "made"), nil, 0o600)
	})
	mustDo(err)
	if seenUID != uid || seenGID != gid || len(groups) != 0 {
		t.Fatalf("on the clean-up's thread: uid %d gid %d groups %v, want %d %d and none", seenUID, seenGID, groups, uid, gid)
	}
	if !errors.Is(readErr, unix.EACCES) {
		t.Fatalf("reading root's 0600 file on the clean-up's thread: %v, want permission denied", readErr)
	}
	var st unix.Stat_t
	mustDo(unix.Stat(filepath.Join(dir, "made"), &st))
	if st.Uid != uid || st.Gid != gid {
		t.Fatalf("a file made on the clean-up's thread belongs to %d:%d, want %d:%d", st.Uid, st.Gid, uid, gid)
	}
	if os.Getuid() != 0 || os.Getgid() != 0 {
		t.Fatalf("the test's own thread became %d:%d", os.Getuid(), os.Getgid())
	}
	testenv.Eventually(t, "no thread of the process left with uid 65534", func() bool {
		tasks, err := os.ReadDir("/proc/self/task")
		mustDo(err)
		for _, task := range tasks {
			status, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "status"))
			if err != nil {
				continue // ended meanwhile
			}
			for _, line := range strings.Split(string(status), "\n") {
				if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] == "65534" {
					return false
				}
			}
		}
		return true
	})
}

func TestTheCleanUpRefusesToRunAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to be root")
	}
	err := cleanUpAsRunUser(nil)
	if err == nil || !strings.Contains(err.Error(), "never as root") {
		t.Fatalf("the clean-up as root: %v, want a refusal", err)
	}
}
