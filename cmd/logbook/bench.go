package main

import "github.com/spf13/cobra"

// benchSubcommands is filled by each benchmark file's init (`logbook bench store`,
// `logbook bench exec`, ...).
var benchSubcommands []func() *cobra.Command

func registerBench(newCmd func() *cobra.Command) { benchSubcommands = append(benchSubcommands, newCmd) }

func init() { register(newBenchCmd) }

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Logbook's speed on this machine (numbers, never pass/fail)",
	}
	for _, newSub := range benchSubcommands {
		cmd.AddCommand(newSub())
	}
	return cmd
}
