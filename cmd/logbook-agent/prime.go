package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/logbookhq/logbook/adapters/docker/agentproto"
)

// agentArgs is what the agent's command line asks for.
type agentArgs struct {
	oneRun bool     // agentproto.OneRunArg
	prime  []string // agentproto.PrimeArg, each
}

// parseArgs reads the agent's arguments; anything else is refused, so a
// host and an agent of different builds fail loudly rather than quietly
// serve in the wrong mode.
func parseArgs(args []string) (agentArgs, error) {
	var a agentArgs
	for _, arg := range args {
		switch path, isPrime := strings.CutPrefix(arg, agentproto.PrimeArg); {
		case arg == agentproto.OneRunArg:
			a.oneRun = true
		case isPrime && path != "":
			a.prime = append(a.prime, path)
		default:
			return agentArgs{}, fmt.Errorf("unknown argument %q", arg)
		}
	}
	return a, nil
}

// maxPrimeBytes bounds what prime reads of one file.
const maxPrimeBytes = 64 << 20

// prime reads the files a command is likely to exec, before the agent
// says it is ready, and returns how many bytes it read. On fuse-overlayfs
// the first exec of a binary in a new container cost 2 to 3.5 ms more
// than later ones (docs/benchmarks.md); a single-use spare is started
// ahead of its run, so the read is off the run's path. A name without a
// slash is looked up in PATH, as the command's own exec does. Only
// regular files are read, at most their size (files of /proc say 0) and
// at most maxPrimeBytes: a FIFO, a device or a missing file is skipped,
// since priming only ever saves time.
func prime(paths []string) int64 {
	var read int64
	for _, path := range paths {
		if !strings.Contains(path, "/") {
			found, err := exec.LookPath(path)
			if err != nil {
				continue
			}
			path = found
		}
		read += primeFile(path)
	}
	return read
}

func primeFile(path string) int64 {
	// O_NONBLOCK: opening a FIFO must not wait for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return 0
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() || info.Size() <= 0 {
		return 0
	}
	n, _ := io.Copy(io.Discard, io.LimitReader(f, min(info.Size(), maxPrimeBytes)))
	return n
}
