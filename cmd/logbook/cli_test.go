package main

import (
	"bytes"
	"testing"
)

// runCLI runs the logbook command line in-process and returns its error
// (an *exitError carries the exit code).
func runCLI(t *testing.T, args ...string) error {
	t.Helper()
	_, _, err := runCLIOutput(t, args...)
	return err
}

func runCLIOutput(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}
