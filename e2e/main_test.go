// Package e2e tests the built logbook binary from the outside, the way an
// operator runs it.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// binary is the logbook executable built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "logbook-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "logbook")
	_, here, _, _ := runtime.Caller(0)
	// All binaries: serve builds the sample image from logbook-toolbox and
	// finds logbook-agent next to itself.
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/...")
	build.Dir = filepath.Join(filepath.Dir(here), "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build logbook: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	removeBuiltImage()
	os.RemoveAll(dir)
	os.Exit(code)
}
