// Command logbook-toolbox is the sample bundle's commands in one small static
// binary: echo, date, wc, sort, sleep and seq. It speaks the Cog command
// protocol: arguments in COG_ARGV_<n>, options in COG_OPT_<NAME>, the
// previous stage's JSON on stdin, and plain lines or a `JSON` marker line on
// stdout. It picks the command from its own name (the image links each
// command to it) or, when called as logbook-toolbox, from its first argument.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if name == "logbook-toolbox" || name == "toolbox" {
		if len(args) == 0 {
			fmt.Fprintln(os.Stderr, "usage: logbook-toolbox COMMAND [ARG...]; commands:", strings.Join(commandNames(), ", "))
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	inv := invocationFromEnv(os.Getenv, args)
	if err := run(name, inv, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// invocation is what a command receives.
type invocation struct {
	args []string
	opt  func(name string) (string, bool)
}

// invocationFromEnv reads the Cog protocol's arguments and options; outside
// Cog (no COG_ARGC), the command line's arguments.
func invocationFromEnv(getenv func(string) string, argv []string) invocation {
	inv := invocation{args: argv, opt: func(name string) (string, bool) {
		v := getenv("COG_OPT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
		return v, v != ""
	}}
	if argc := getenv("COG_ARGC"); argc != "" {
		var n int
		fmt.Sscan(argc, &n)
		inv.args = make([]string, 0, n)
		for i := range n {
			inv.args = append(inv.args, getenv(fmt.Sprintf("COG_ARGV_%d", i)))
		}
	}
	return inv
}

func run(name string, inv invocation, stdin io.Reader, stdout io.Writer) error {
	cmd, ok := commands[name]
	if !ok {
		return fmt.Errorf("unknown command; try one of %s", strings.Join(commandNames(), ", "))
	}
	return cmd(inv, stdin, stdout)
}
