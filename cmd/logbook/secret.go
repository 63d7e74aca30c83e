package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/logbookhq/logbook/adapters/httpapi"
	"github.com/logbookhq/logbook/domain/bundleconfig"
)

func init() { register(secretNewCmd) }

func secretNewCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Set, list and remove a bundle's secrets; rotate the key they are encrypted under",
		Long: `A secret is configuration whose value never enters Logbook's log: the log
records its name, layer and version, and the value is kept encrypted. A run
of the bundle gets it as an environment variable, and every place its value
would appear in the run's output, reply or errors shows [redacted: NAME].`,
	}
	cmd.AddCommand(secretNewSetCmd(), secretNewRotateCmd())
	for _, sub := range []struct{ use, short string }{
		{"list BUNDLE", "List a bundle's secrets: name, layer and version (sends `secret list`)"},
		{"unset BUNDLE [--room R | --group G | --user U] KEY", "Remove a secret from one layer and delete its value (sends `secret unset`)"},
	} {
		name := strings.Fields(sub.use)[0]
		cmd.AddCommand(&cobra.Command{
			Use: sub.use, Short: sub.short, DisableFlagParsing: true,
			RunE: func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
					return cmd.Help()
				}
				return adminSend(cmd, adminCommandText("secret", append([]string{name}, args...)))
			},
		})
	}
	return cmd
}

// maxSecretInput is read from standard input at most: the value's limit
// and one byte to tell it was over.
const maxSecretInput = bundleconfig.MaxValueBytes + 2

func secretNewSetCmd() *cobra.Command {
	var room, group, user string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "set BUNDLE KEY [--room R | --group G | --user U]",
		Short: "Set a secret from standard input (never from an argument)",
		Long: `Read the secret's value from standard input and store it, encrypted, as the
next version of KEY in one layer of BUNDLE's configuration: the base layer,
or a room's, a group's or a user's. On a terminal the value is not echoed;
from a pipe one trailing newline is dropped. The value is never an
argument, which would be in the shell's history and the process list.`,
		Example: "  printf %s \"$TOKEN\" | logbook secret set github GITHUB_TOKEN\n  logbook secret set aws AWS_SECRET_ACCESS_KEY --user bob",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			layer, err := secretLayer(room, group, user)
			if err != nil {
				return exitWith(2, "%v", err)
			}
			if err := bundleconfig.ValidateKey(args[1]); err != nil {
				return exitWith(2, "%v", err)
			}
			value, err := readSecretValue(cmd, args[1])
			if err != nil {
				return exitWith(2, "%v", err)
			}
			var answer httpapi.SecretSetAnswer
			err = postJSON(cmd, "/v1/secrets", map[string]string{"bundle": args[0], "key": args[1], "layer": layer.String(), "value": value}, &answer)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), answer)
			}
			t := newTable(cmd.OutOrStdout(), "BUNDLE", "KEY", "LAYER", "VERSION")
			t.Row(answer.Bundle, answer.Key, answer.Layer, answer.Version)
			return t.Flush()
		},
	}
	cmd.Flags().StringVar(&room, "room", "", "set it in this room's layer")
	cmd.Flags().StringVar(&group, "group", "", "set it in this group's layer")
	cmd.Flags().StringVar(&user, "user", "", "set it in this user's layer")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {bundle, key, layer, version}")
	return cmd
}

// secretLayer is the one layer the flags name, base without any.
func secretLayer(room, group, user string) (bundleconfig.Layer, error) {
	layer := bundleconfig.BaseLayer
	given := 0
	for _, f := range []struct {
		kind bundleconfig.LayerKind
		name string
	}{{bundleconfig.Room, room}, {bundleconfig.Group, group}, {bundleconfig.User, user}} {
		if f.name == "" {
			continue
		}
		given++
		var err error
		if layer, err = bundleconfig.NewLayer(f.kind, f.name); err != nil {
			return layer, err
		}
	}
	if given > 1 {
		return layer, errors.New("name one layer: --room, --group or --user, or none for the base layer")
	}
	return layer, nil
}

// readSecretValue reads the value: without echo on a terminal, else all
// of standard input less one trailing newline.
func readSecretValue(cmd *cobra.Command, key string) (string, error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(cmd.ErrOrStderr(), "value of %s (not shown): ", key)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("read the value: %w", err)
		}
		return string(b), nil
	}
	b, err := io.ReadAll(io.LimitReader(in, maxSecretInput))
	if err != nil {
		return "", fmt.Errorf("read the value from standard input: %w", err)
	}
	value := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if len(value) > bundleconfig.MaxValueBytes {
		return "", fmt.Errorf("the value is over the %d-byte limit", bundleconfig.MaxValueBytes)
	}
	if value == "" {
		return "", errors.New("standard input held no value: pipe it in, e.g. printf %s \"$TOKEN\" | logbook secret set BUNDLE KEY")
	}
	return value, nil
}

func secretNewRotateCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rotate-key",
		Short: "Encrypt every secret again under a new key (needs logbook:admin)",
		Long: `The server adds a new key to its key file, encrypts every stored secret again
under it in one transaction, then drops the old key from the file. A stop
at any point leaves every secret readable. Back up the key file afterwards.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var answer httpapi.KeyRotationAnswer
			if err := postJSON(cmd, "/v1/secrets/rotate-key", map[string]string{}, &answer); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), answer)
			}
			t := newTable(cmd.OutOrStdout(), "KEY ID", "RE-ENCRYPTED")
			t.Row(answer.KeyID, answer.Reencrypted)
			return t.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {key_id, reencrypted}")
	return cmd
}
