package main

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/adapters/httpapi"
)

// `logbook trigger ...` and `logbook schedule ...` send the chat builtins'
// text, as the other administration commands do; `list` reads the API's
// lists into a table (or --json), and a trigger's HMAC secret is read from
// standard input and sent to its own route, never in a command's text.

func init() {
	register(func() *cobra.Command {
		cmd := adminNewCmd("trigger", "Create, enable, disable, delete and list triggers: POST /v1/triggers/NAME runs a pipeline as a user",
			"trigger create NAME --pipeline 'P' [--as USER] [--timeout 30s] [--provider irc] [--hmac-secret-from-stdin] [--hmac-header H] [--token] | token NAME | enable NAME | disable NAME | delete NAME | list [--json] | secret NAME (from standard input)",
			"  logbook trigger create deploy --pipeline 'echo $body.ref > #ops' --provider irc --hmac-secret-from-stdin < secret.txt\n  logbook trigger list")()
		inner := cmd.RunE
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) > 0 && args[0] == "list":
				return listTriggers(cmd, slices.Contains(args, "--json"))
			case len(args) == 2 && args[0] == "secret":
				return setTriggerSecret(cmd, args[1])
			case len(args) > 1 && args[0] == "create" && slices.Contains(args, "--hmac-secret-from-stdin"):
				secret, err := readSecretValue(cmd, "the HMAC secret")
				if err != nil {
					return exitWith(2, "%v", err)
				}
				args = slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "--hmac-secret-from-stdin" })
				// Created requiring a signature: until the secret is set,
				// every call is refused, so it is never open.
				if err := inner(cmd, append(args, "--require-hmac")); err != nil {
					return err
				}
				return sendTriggerSecret(cmd, args[1], secret)
			}
			return inner(cmd, args)
		}
		return cmd
	})
	register(func() *cobra.Command {
		cmd := adminNewCmd("schedule", "Add, pause, resume, delete and list schedules: a pipeline run as you on a clock",
			"schedule add \"SPEC\" 'PIPELINE' [--name N] [--tz Europe/Berlin] [--missed skip|run-once] [--provider P --room R] | pause NAME | resume NAME | delete NAME | list [--json]",
			"  logbook schedule add \"0 9 * * 1-5\" 'echo standup' --name standup --tz Europe/Berlin --provider irc --room ops\n  logbook schedule add \"every 10m\" 'toolbox:date'\n  logbook schedule list")()
		inner := cmd.RunE
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && args[0] == "list" {
				return listSchedules(cmd, slices.Contains(args, "--json"))
			}
			return inner(cmd, args)
		}
		return cmd
	})
}

func getList(cmd *cobra.Command, path string, out any) error {
	cc, err := loadClientConfig()
	if err != nil {
		return exitWith(2, "%v", err)
	}
	if err := getJSONFrom(cmd.Context(), &http.Client{Timeout: 30 * time.Second}, cc, path, out); err != nil {
		return exitWith(2, "%v", err)
	}
	return nil
}

func listTriggers(cmd *cobra.Command, asJSON bool) error {
	var list httpapi.TriggerList
	if err := getList(cmd, "/v1/triggers", &list); err != nil {
		return err
	}
	if asJSON {
		return writeJSON(cmd.OutOrStdout(), list)
	}
	t := newTable(cmd.OutOrStdout(), "NAME", "ENABLED", "RUNS AS", "PIPELINE", "TOKEN", "HMAC", "SECRET", "TIMEOUT")
	for _, r := range list.Triggers {
		hmac := "-"
		if r.RequireHMAC {
			hmac = r.SignatureHeader
		}
		t.Row(r.Name, r.Enabled, r.RunAs, r.Pipeline, r.HasToken, hmac, fmt.Sprintf("v%d", r.SecretVersion), time.Duration(r.TimeoutMS)*time.Millisecond)
	}
	return t.Flush()
}

func listSchedules(cmd *cobra.Command, asJSON bool) error {
	var list httpapi.ScheduleList
	if err := getList(cmd, "/v1/schedules", &list); err != nil {
		return err
	}
	if asJSON {
		return writeJSON(cmd.OutOrStdout(), list)
	}
	t := newTable(cmd.OutOrStdout(), "NAME", "PAUSED", "OWNER", "SPEC", "TZ", "PIPELINE", "POSTS TO", "MISSED", "LAST TICK")
	for _, r := range list.Schedules {
		to := "-"
		if r.Provider != "" {
			to = r.Provider + " " + r.Room
		}
		last := r.LastOutcome
		if r.LastTick.Valid {
			last = time.UnixMicro(r.LastTick.Int64).UTC().Format(time.RFC3339) + " " + last
		}
		t.Row(r.Name, r.Paused, r.Owner, r.Spec, r.TZ, r.Pipeline, to, r.Missed, last)
	}
	return t.Flush()
}

func setTriggerSecret(cmd *cobra.Command, name string) error {
	secret, err := readSecretValue(cmd, "the HMAC secret of "+name)
	if err != nil {
		return exitWith(2, "%v", err)
	}
	return sendTriggerSecret(cmd, name, secret)
}

func sendTriggerSecret(cmd *cobra.Command, name, secret string) error {
	var answer httpapi.SecretAnswer
	if err := postJSON(cmd, "/v1/triggers/"+name+"/secret", httpapi.SecretBody{Value: secret}, &answer); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Trigger %s: HMAC secret set (version %d); Logbook keeps it encrypted and records only its version.\n", answer.Trigger, answer.Version)
	return nil
}
